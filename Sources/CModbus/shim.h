#ifndef CMODBUS_SHIM_H
#define CMODBUS_SHIM_H
#include <modbus/modbus.h>
#include <errno.h>

/// errno of the calling thread (Swift cannot read the macro directly).
static inline int cmodbus_errno(void) { return errno; }
static inline void cmodbus_set_errno(int value) { errno = value; }

/// libmodbus's own error base and exception codes, as plain constants.
static const int CMODBUS_ENOBASE = MODBUS_ENOBASE;
static const int CMODBUS_EMBXILFUN = EMBXILFUN;
static const int CMODBUS_EMBXILADD = EMBXILADD;
static const int CMODBUS_EMBXILVAL = EMBXILVAL;
static const int CMODBUS_EMBXSFAIL = EMBXSFAIL;
static const int CMODBUS_EMBXACK = EMBXACK;
static const int CMODBUS_EMBXSBUSY = EMBXSBUSY;
static const int CMODBUS_EMBXNACK = EMBXNACK;
static const int CMODBUS_EMBXMEMPAR = EMBXMEMPAR;
static const int CMODBUS_EMBXGPATH = EMBXGPATH;
static const int CMODBUS_EMBXGTAR = EMBXGTAR;
static const int CMODBUS_EMBBADCRC = EMBBADCRC;
static const int CMODBUS_EMBBADDATA = EMBBADDATA;
static const int CMODBUS_EMBBADEXC = EMBBADEXC;
static const int CMODBUS_EMBMDATA = EMBMDATA;
static const int CMODBUS_EMBBADSLAVE = EMBBADSLAVE;
static const int CMODBUS_TCP_MAX_ADU = MODBUS_TCP_MAX_ADU_LENGTH;
static const int CMODBUS_MAX_READ_REGISTERS = MODBUS_MAX_READ_REGISTERS;
static const int CMODBUS_MAX_READ_BITS = MODBUS_MAX_READ_BITS;

#endif
