#!/usr/bin/env python3
"""Writes the held-VIN recordings of the default plant (Stations/plant.json) used by
Tests/MESTests/HeldVINReplayTests.swift. Run from the repository root:

    python3 Tests/recordings/make_held_vins.py

The stations behave like real PLCs rather than like the simulator: after a cycle the vehicle id
and `cycleDone` stay until the next vehicle arrives, a fault in the middle of such a hold drops
`cycleDone` and sets it again when it ends (some come back `running`, one blanks the id for a
moment), and a weld cell a vehicle passes by (it takes the parallel cell) keeps showing the
vehicle before. Lines are written for changes plus one `state` line per station and second (a
poll), in the replay format of README "Stations, scenarios, record and replay".

held-vins.jsonl                   four vehicles through the line, only holds: no sequence alert.
held-vins-repeat-duplicate.jsonl  the same, plus a real repeat (A reworked in place at ASSY-01
                                  after a NOK, the cell started again) and a real duplicate (a
                                  second body carrying B's VIN welded at WELD-01 while B is painted).
"""
import datetime
import json
import os

START = datetime.datetime(2026, 11, 23, 0, 0, 0, tzinfo=datetime.timezone.utc)  # 08:00 in Shanghai, shift A
IDLE, RUNNING, FAULT, BLOCKED, STARVED = 0, 1, 2, 3, 4

TRANSLITERATION = {**{str(d): d for d in range(10)},
                   **dict(zip("ABCDEFGH", range(1, 9))), **dict(zip("JKLMN", range(1, 6))), "P": 7, "R": 9,
                   **dict(zip("STUVWXYZ", range(2, 10)))}
WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]


def vin(serial):
    """A VIN with its check digit (ISO 3779), model year 2026 (T), plant S."""
    draft = "LSVAB3C10TS" + "%06d" % serial
    total = sum(TRANSLITERATION[c] * w for c, w in zip(draft, WEIGHTS))
    check = "X" if total % 11 == 10 else str(total % 11)
    return draft[:8] + check + draft[9:]


A, B, C, D = vin(480101), vin(480102), vin(480103), vin(480104)

STATIONS = {
    "WELD-01": {"cycle": "cycleDone", "measure": {"weldCurrent": 10.1, "weldVoltage": 8.0, "spotCount": 50}},
    "WELD-02": {"cycle": "cycleDone", "measure": {"weldCurrent": 10.2, "weldVoltage": 8.1, "spotCount": 50}},
    "PAINT-01": {"cycle": "cycleDone", "measure": {"filmThickness": 110.0, "boothTemp": 23.0, "humidity": 65.0}},
    "ASSY-01": {"cycle": "cycleCount", "measure": {"torque": 120.0, "angle": 45.0}},
    "ASSY-02": {"cycle": "cycleDone", "measure": {"torque": 121.0, "angle": 44}},
    "INSP-01": {"cycle": "cycleDone", "measure": {"gap": 4.0, "flush": 0}},
}


class Recording:
    def __init__(self, seconds):
        self.seconds = seconds
        self.events = []  # (t, order, station, signal, value)
        self.values = {s: {} for s in STATIONS}
        self.cycles = {"ASSY-01": 0}
        for s, spec in STATIONS.items():
            self.set(0, s, vehicleId="", state=IDLE, faultCode=0, result=1)
            self.set(0, s, **{spec["cycle"]: 0 if spec["cycle"] == "cycleCount" else False})

    def set(self, t, station, **signals):
        for name, value in signals.items():
            self.events.append((t, len(self.events), station, name, value))

    def arrive(self, t, station, vehicle):
        """The vehicle id appears and the cell starts: the previous id and cycleDone are replaced."""
        spec = STATIONS[station]
        self.set(t, station, vehicleId=vehicle, state=RUNNING)
        if spec["cycle"] == "cycleDone":
            self.set(t, station, cycleDone=False)

    def complete(self, t, station, result=1):
        """Measurements and result one poll before the end; the cycle ends and the cell goes idle.
        The vehicle id and cycleDone stay (the PLC holds them)."""
        spec = STATIONS[station]
        self.set(t - 0.2, station, result=result, **spec["measure"])
        if spec["cycle"] == "cycleCount":
            self.cycles[station] += 1
            self.set(t, station, cycleCount=self.cycles[station], state=IDLE)
        else:
            self.set(t, station, cycleDone=True, state=IDLE)

    def work(self, station, vehicle, start, end, result=1):
        self.arrive(start, station, vehicle)
        self.complete(end, station, result)

    def write(self, path):
        # One state line per station and second: every station is polled each second.
        last_state = {}
        polls = []
        events = sorted(self.events)
        for second in range(self.seconds + 1):
            for station in STATIONS:
                polls.append((float(second), -1, station, "state", None))
        merged = sorted(events + polls, key=lambda e: (e[0], e[1] < 0, e[1]))
        lines = []
        seen = set()
        for t, order, station, signal, value in merged:
            if order == -1:
                # A keyframe: the station's current state, unless this poll already carries one.
                if (t, station) in seen:
                    continue
                value = last_state.get(station, IDLE)
            if signal == "state":
                last_state[station] = value
            seen.add((t, station))
            stamp = (START + datetime.timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % round((t % 1) * 1000)
            lines.append(json.dumps({"t": stamp, "station": station, "signal": signal, "value": value},
                                    separators=(",", ":")))
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")


def held_line(rec, real_issues):
    """A, B, C, D through the line; every PLC holds ids; faults in the middle of holds. With
    `real_issues`, a twin of B welded while B is painted and A reworked in place at ASSY-01."""
    rec.work("WELD-01", A, 0, 20)
    rec.work("WELD-02", B, 10, 30)
    rec.work("PAINT-01", A, 25, 45)
    # WELD-01 holds A: a fault drops cycleDone, the end of it resumes running and sets it again.
    rec.set(30, "WELD-01", state=FAULT, faultCode=12, cycleDone=False)
    rec.set(36, "WELD-01", state=RUNNING, faultCode=0)
    rec.set(37, "WELD-01", cycleDone=True)
    rec.set(38, "WELD-01", state=IDLE)
    # C takes WELD-02: WELD-01 keeps showing A. A second fault blanks the id for a moment.
    rec.work("WELD-02", C, 35, 55)
    rec.set(42, "WELD-01", state=FAULT, faultCode=7)
    rec.set(43, "WELD-01", vehicleId="")
    rec.set(46, "WELD-01", state=IDLE, faultCode=0)
    rec.set(47, "WELD-01", vehicleId=A)
    rec.set(48, "WELD-01", state=STARVED)
    # A is NOK at ASSY-01 in the second recording (reworked below).
    rec.work("ASSY-01", A, 50, 70, result=2 if real_issues else 1)
    rec.work("PAINT-01", B, 50, 70)
    if real_issues:
        # A second body carrying B's VIN is welded at WELD-01 while B is painted: a duplicate.
        rec.work("WELD-01", B, 52, 58)
    # PAINT-01 held A from 45 to 50 and holds B from 70 to 75, a fault in between.
    rec.set(71, "PAINT-01", state=FAULT, faultCode=3, cycleDone=False)
    rec.set(73, "PAINT-01", state=RUNNING, faultCode=0, cycleDone=True)
    rec.set(74, "PAINT-01", state=IDLE)
    rec.work("WELD-01", D, 60, 80)
    rec.work("INSP-01", A, 75, 95)
    rec.work("ASSY-02", B, 75, 95)
    rec.work("PAINT-01", C, 75, 95)
    # ASSY-01 holds A while A is inspected: a fault, then blocked, then idle (the counter stays).
    rec.set(80, "ASSY-01", state=FAULT, faultCode=21)
    rec.set(84, "ASSY-01", state=BLOCKED, faultCode=0)
    rec.set(90, "ASSY-01", state=IDLE)
    if real_issues:
        # A back at ASSY-01 after inspection: the cell is started again on it (a repeat).
        rec.set(96, "ASSY-01", state=RUNNING)
        rec.complete(99, "ASSY-01", result=1)
    rec.work("INSP-01", B, 100, 120)
    rec.work("ASSY-01", C, 100, 120)
    rec.work("PAINT-01", D, 100, 120)
    # ASSY-02 holds B: fault, back running (resume) with cycleDone set again, idle.
    rec.set(105, "ASSY-02", state=FAULT, faultCode=4, cycleDone=False)
    rec.set(108, "ASSY-02", state=RUNNING, faultCode=0)
    rec.set(109, "ASSY-02", cycleDone=True)
    rec.set(110, "ASSY-02", state=IDLE)
    rec.work("INSP-01", C, 125, 145)
    rec.work("ASSY-02", D, 125, 145)
    rec.work("INSP-01", D, 150, 170)
    # INSP-01 holds D to the end: a fault with the id blank and back, then starved.
    rec.set(175, "INSP-01", state=FAULT, faultCode=9, cycleDone=False, vehicleId="")
    rec.set(178, "INSP-01", state=IDLE, faultCode=0, vehicleId=D, cycleDone=True)
    rec.set(185, "INSP-01", state=STARVED)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for name, real_issues in [("held-vins.jsonl", False), ("held-vins-repeat-duplicate.jsonl", True)]:
        rec = Recording(200)
        held_line(rec, real_issues)
        rec.write(os.path.join(here, name))


if __name__ == "__main__":
    main()
