import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

// MARK: - The I/O thread: connect, session setup, the receive pump, publishing

extension OPCUAClient {

    /// Interrupts whoever owns the connection now: the client's loop, or its own thread.
    func wake() {
        if let loop = lock.withLock({ attachedLoop }) { loop.poke(self) } else { taskExecutor.wake() }
    }

    func setState(_ state: ConnectionState) {
        let handler: (@Sendable (ConnectionState) -> Void)? = lock.withLock {
            guard currentState != state else { return nil }
            currentState = state
            return stateHandler
        }
        handler?(state)
    }

    /// Why a thread of the client's own starts.
    enum ControlEntry {
        /// `connect()`: the first attempt.
        case start
        /// The loop lost the connection.
        case lost(any Error)
        /// The loop saw a stop, a reconnect, or subscriptions to create or delete.
        case work
        /// The reconnect back-off (waited out on the loop) is over, or a stop or reconnect was asked meanwhile.
        case retry
    }

    /// The client's own thread: connects (channel and session), waits out the back-off between attempts,
    /// creates and deletes subscriptions and closes; once the session is up and nothing else waits, it
    /// hands the socket to the client's loop and ends.
    func controlMain(_ entry: ControlEntry) {
        taskExecutor.attach()
        var actions: [ClientConnectionMachine.Action]
        switch entry {
        case .start:
            machine = ClientConnectionMachine(autoReconnect: options.autoReconnect, initialDelayMs: 100,
                                              maxDelayMs: options.maxReconnectDelayMs)
            failures = 0
            lastError = nil
            actions = machine.start()
        case .lost(let error):
            actions = connectionFailed(error)
        case .work:
            guard let next = serviceOrFail() else { return handToLoop() }
            actions = next
        case .retry:
            if lock.withLock({ stopRequested }) {
                actions = machine.close()
            } else if lock.withLock({ reconnectRequested }) {
                actions = machine.reconnectRequested()
            } else {
                actions = machine.tick(nowNs: Monotonic.nanoseconds())
                // Woken early (a task): back to the loop until the time comes.
                if actions.isEmpty, case .waiting(let until, _) = machine.state { return waitOnLoop(untilNs: until) }
            }
        }
        running: while true {
            var shouldConnect = false
            for action in actions {
                switch action {
                case .notify(let state):
                    setState(state)
                case .completeFirstConnect(let failure):
                    let first = lock.withLock { () -> (@Sendable (Result<Void, any Error>) -> Void)? in
                        defer { firstConnect = nil }
                        return firstConnect
                    }
                    first?(failure == nil ? .success(()) : .failure(lastError ?? ClientError.connectionLost(failure ?? "")))
                case .connect:
                    shouldConnect = true
                case .stop:
                    break running
                }
            }
            actions = []
            if lock.withLock({ stopRequested }) {
                actions = machine.close()
                continue
            }
            if shouldConnect {
                do {
                    lock.withLock { reconnectRequested = false }
                    try establish()
                    failures = 0
                    for case .notify(let state) in machine.connectSucceeded() { setState(state) }
                    let first = lock.withLock { () -> (@Sendable (Result<Void, any Error>) -> Void)? in
                        defer { firstConnect = nil }
                        return firstConnect
                    }
                    first?(.success(()))
                } catch {
                    actions = connectionFailed(error)
                    continue
                }
                guard let next = serviceOrFail() else { return handToLoop() }
                actions = next
                continue
            }
            if case .waiting(let until, _) = machine.state {
                let now = Monotonic.nanoseconds()
                if lock.withLock({ reconnectRequested }) {
                    actions = machine.reconnectRequested()
                } else if until <= now {
                    actions = machine.tick(nowNs: now)
                } else {
                    // The back-off is waited out on the loop, with no thread; the next attempt starts a new one.
                    return waitOnLoop(untilNs: until)
                }
            }
        }
        if fd >= 0 { gracefulClose() }
        dropConnection(error: ClientError.closed)
        let (done, toDelete) = lock.withLock { () -> (DispatchSemaphore, [(LocalSubscription, @Sendable (Result<Void, any Error>) -> Void)]) in
            threadRunning = false
            let result = (threadDone, subscriptionsToDelete)
            subscriptionsToDelete = []
            let creating = subscriptionsToCreate
            subscriptionsToCreate = []
            for local in creating { local.created?(.failure(ClientError.closed)); local.created = nil }
            return result
        }
        for (_, done) in toDelete { done(.success(())) }
        try? runTasks()
        taskExecutor.detach()
        done.signal()
    }

    /// A connect attempt failed or the connection was lost: every request in flight fails now with the
    /// reason (rather than waiting for its timeout), and the machine says what comes next.
    func connectionFailed(_ error: any Error) -> [ClientConnectionMachine.Action] {
        lastError = error
        let reason = "\(error)"
        failures += 1
        // The first failure in a row is worth a warning; the retries that follow are not.
        let logger = options.logger.with("endpoint", options.endpointURL)
        if failures == 1 { logger.warning("connection failed: \(reason)") } else { logger.debug("reconnect attempt \(failures) failed: \(reason)") }
        dropConnection(error: ClientError.connectionLost(reason))
        var actions = machine.connectionFailed(reason, nowNs: Monotonic.nanoseconds())
        if lock.withLock({ reconnectRequested }) { actions += machine.reconnectRequested() }
        return actions
    }

    /// Does what waits for the connected client's own thread; nil: hand the socket (back) to the loop.
    func serviceOrFail() -> [ClientConnectionMachine.Action]? {
        do {
            return try serviceControl() ? nil : machine.close()
        } catch {
            return connectionFailed(error)
        }
    }

    /// Creates and deletes the subscriptions asked for, until none are left. Returns true to go on
    /// (on the loop), false when the client is to stop; throws when the connection failed or a reconnect
    /// was asked for.
    func serviceControl() throws -> Bool {
        while true {
            let (stop, forced, toCreate, toDelete) = lock.withLock {
                defer {
                    if !subscriptionsToCreate.isEmpty { subscriptionsToCreate = [] }
                    if !subscriptionsToDelete.isEmpty { subscriptionsToDelete = [] }
                }
                return (stopRequested, reconnectRequested, subscriptionsToCreate, subscriptionsToDelete)
            }
            if stop { return false }
            if forced { throw ClientError.connectionLost("reconnect requested") }
            if toCreate.isEmpty && toDelete.isEmpty { return true }
            for local in toCreate {
                do { try createOnServer(local) } catch let error as ClientError {
                    lock.withLock { subscriptionsToCreate.insert(local, at: 0) }
                    throw error
                } catch {
                    lock.withLock { _ = subscriptions.removeValue(forKey: local.id) }
                    local.created?(.failure(error))
                    local.created = nil
                }
            }
            for (local, done) in toDelete {
                if let serverId = local.serverId {
                    subscriptionsByServerId[serverId] = nil
                    _ = try? transact(DeleteSubscriptionsRequest(subscriptionIds: [serverId]), timeoutMs: options.requestTimeoutMs)
                }
                done(.success(()))
            }
        }
    }

    /// Gives the socket to the client's loop; the calling thread (the client's own) ends after this.
    func handToLoop() {
        if socketInterest != nil, fd >= 0 { try? epoll.remove(fd) }
        socketInterest = nil
        taskExecutor.routeToLoop()
        let loop = homeLoop
        lock.withLock { attachedLoop = loop }
        loop.attach(self)
    }

    /// Waits out the reconnect back-off on the client's loop (until `untilNs`, or a stop or reconnect);
    /// the calling thread (the client's own) ends after this.
    func waitOnLoop(untilNs: UInt64) {
        taskExecutor.routeToLoop()
        let loop = homeLoop
        lock.withLock { attachedLoop = loop }
        loop.wait(self, untilNs: untilNs)
    }

    /// True when a waiting client must start its thread now: a stop or a reconnect was asked.
    var wantsThreadWhileWaiting: Bool { lock.withLock { stopRequested || reconnectRequested } }

    /// The loop gave the socket back (loop thread): a thread of the client's own takes over.
    func loopDetached(_ entry: ControlEntry) {
        lock.withLock { attachedLoop = nil }
        startThread(named: "opcua-client") { [self] in controlMain(entry) }
    }

    // MARK: - On the loop (loop thread, while the loop owns the socket)

    /// True while `outbox` holds bytes the socket did not take yet.
    var hasOutbox: Bool { lock.withLock { !outbox.isEmpty } }

    /// The socket is ready: flush what waits, read what arrived and hand the responses to their waiters.
    func loopReady(events: UInt32, buffer: inout [UInt8]) throws {
        if events & Epoll.writable != 0 {
            try lock.withLock { try flushLocked() }
        }
        if events & Epoll.input != 0 {
            let count = buffer.withUnsafeMutableBytes { raw in Glibc.recv(fd, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT)) }
            if count < 0 {
                let code = errno
                guard code == EAGAIN || code == EWOULDBLOCK || code == EINTR else {
                    throw ClientError.connectionLost("recv: \(String(cString: strerror(code)))")
                }
            } else if count == 0 {
                throw ClientError.connectionLost("closed by server")
            } else {
                lastReceiveNs = Monotonic.nanoseconds()
                var opened = true
                try step(opened: &opened) { channel.receive(buffer[0..<count], nowNs: lastReceiveNs) }
                if publishOutstanding < maxPublishOutstanding { try replenishPublish() }
            }
        }
        try runTasks()
    }

    /// The client's periodic care on the loop: token renewal, request timeouts, the silence limit,
    /// publish requests, and tasks. Returns true when the client's own thread must take over (a stop,
    /// a reconnect, subscriptions to create or delete); throws when the connection is lost.
    func loopHousekeeping(nowNs now: UInt64) throws -> Bool {
        let needsThread = lock.withLock {
            stopRequested || reconnectRequested || !subscriptionsToCreate.isEmpty || !subscriptionsToDelete.isEmpty
        }
        if needsThread { return true }
        try replenishPublish()
        try checkSilence(nowNs: now)
        sweepTimeouts(nowNs: now)
        var opened = true
        try step(opened: &opened) { channel.tick(nowNs: now) }
        try runTasks()
        try lock.withLock { try flushLocked() }
        return false
    }

    /// With subscriptions active, a server silent for too long counts as lost.
    func checkSilence(nowNs now: UInt64) throws {
        guard !subscriptionsByServerId.isEmpty else { return }
        let keepAliveMs = subscriptionsByServerId.values.map(\.keepAliveMs).max() ?? 0
        let silenceMs = max(Double(options.silenceTimeoutMs), keepAliveMs * 3)
        if now > lastReceiveNs + UInt64(silenceMs * 1_000_000) {
            throw ClientError.connectionLost("no message from the server for \(Int(silenceMs)) ms")
        }
    }

    /// Fails the requests past their deadline.
    func sweepTimeouts(nowNs now: UInt64) {
        lock.withLock {
            guard pending.values.contains(where: { $0.deadlineNs < now }) else { return }
            for (id, entry) in pending where entry.deadlineNs < now {
                pending[id] = nil
                completions.append((entry.waiter, .failure(ClientError.timeout)))
            }
        }
        deliverCompletions()
    }

    func drainWake() { taskExecutor.drainWake() }

    /// Runs the tasks waiting for the I/O thread; the requests they send leave together in one write.
    func runTasks() throws {
        guard taskExecutor.hasJobs else { return }
        lock.withLock { corked = true }
        taskExecutor.runJobs()
        try lock.withLock {
            corked = false
            try flushLocked()
        }
    }

    /// Closes the socket and fails every request in flight with `error`.
    func dropConnection(error: any Error) {
        let failed: [Pending] = lock.withLock {
            // Closed under the lock, so no task writes to a descriptor number the system hands out again.
            if fd >= 0 {
                if socketInterest != nil { try? epoll.remove(fd) }
                socketInterest = nil
                Socket.close(fd)
                fd = -1
            }
            sessionReady = false
            outbox = []
            let entries = Array(pending.values)
            pending = [:]
            return entries
        }
        publishOutstanding = 0
        acknowledgements = []
        internalResults = [:]
        subscriptionsByServerId = [:]
        for entry in failed { entry.waiter.complete(.failure(error)) }
    }

    func gracefulClose() {
        let hasSession = lock.withLock { !authenticationToken.isNull && sessionReady }
        if hasSession {
            _ = try? transact(CloseSessionRequest(), timeoutMs: 1000)
        }
        var opened = true
        try? step(opened: &opened) { channel.close() }
        _ = try? lock.withLock { try flushLocked() }
    }

    /// Opens socket, channel and session; recreates subscriptions. Runs on the I/O thread.
    /// With ``Options/security`` of a secured policy, first fetches the endpoints over a None channel and
    /// chooses the one of that policy and mode (README.md, "OPC UA security").
    func establish() throws {
        dropConnection(error: ClientError.connectionLost("reconnecting"))
        var endpoint: EndpointDescription?
        var discovered: [EndpointDescription] = []
        var channelSecurity = ChannelSecurity()
        if let security = options.security, security.policy != .none {
            try openChannel(ChannelSecurity())
            let endpoints = try transact(GetEndpointsRequest(endpointUrl: options.endpointURL), as: GetEndpointsResponse.self,
                                         timeoutMs: options.connectTimeoutMs).endpoints
            var opened = true
            try? step(opened: &opened) { channel.close() }
            _ = try? lock.withLock { try flushLocked() }
            dropConnection(error: ClientError.connectionLost("endpoints fetched"))
            discovered = endpoints
            let chosen = try chooseEndpoint(endpoints, security)
            endpoint = chosen
            do {
                channelSecurity = try ChannelSecurity(policy: security.policy, mode: security.mode, localCertificate: security.certificate,
                                                      localKey: security.privateKey, remoteCertificate: chosen.serverCertificate ?? [])
            } catch let failure as ChannelFailure {
                throw ClientError.security(failure.status, failure.reason)
            }
        } else if let security = options.security, security.mode != .none {
            throw ClientError.security(.badSecurityModeRejected, "policy None goes with mode None, not \(security.mode)")
        }
        try openChannel(channelSecurity)
        let description = ApplicationDescription(applicationUri: options.security?.applicationURI ?? options.applicationUri,
                                                 productUri: options.applicationUri,
                                                 applicationName: LocalizedText(options.applicationName), applicationType: .client)
        var create = CreateSessionRequest(clientDescription: description, endpointUrl: options.endpointURL,
                                          sessionName: "\(options.applicationName) \(UInt32.random(in: 0...UInt32.max))")
        create.requestedSessionTimeout = options.sessionTimeoutMs
        let clientNonce = Crypto.randomBytes(32)
        create.clientNonce = clientNonce
        if channelSecurity.isSecure { create.clientCertificate = channelSecurity.localCertificate }
        let session = try transact(create, as: CreateSessionResponse.self, timeoutMs: options.connectTimeoutMs)
        lock.withLock { authenticationToken = session.authenticationToken }
        var activate = ActivateSessionRequest(userIdentityToken: ExtensionObject(encodingId: AnonymousIdentityToken.encodingId,
                                                                                      AnonymousIdentityToken(policyId: nil)))
        if let algorithms = channelSecurity.policy.algorithms, let endpoint,
           let serverCertificate = endpoint.serverCertificate, let remoteKey = channelSecurity.remoteKey,
           let localKey = channelSecurity.localKey, let localCertificate = channelSecurity.localCertificate {
            // The server proves it holds its key: its signature over our certificate and nonce (Part 4, 5.6.2).
            if let sent = session.serverCertificate, !sent.isEmpty, sent != serverCertificate {
                throw ClientError.security(.badCertificateInvalid, "CreateSession names another server certificate than the endpoint")
            }
            // The endpoints seen over the None channel must be the ones the secured session reports, or a
            // man in the middle may have offered weaker ones (Part 4, 5.6.2).
            func offers(_ list: [EndpointDescription]) -> Set<String> {
                Set(list.map { "\($0.securityPolicyUri ?? "")|\($0.securityMode)|\(Crypto.sha1($0.serverCertificate ?? []))" })
            }
            if !session.serverEndpoints.isEmpty, offers(session.serverEndpoints) != offers(discovered) {
                throw ClientError.security(.badSecurityChecksFailed, "the endpoints in CreateSession differ from GetEndpoints")
            }
            guard let signature = session.serverSignature.signature,
                  remoteKey.verify(signature, of: localCertificate + clientNonce, padding: algorithms.signaturePadding) else {
                throw ClientError.security(.badApplicationSignatureInvalid, "server signature in CreateSession invalid")
            }
            guard let serverNonce = session.serverNonce, serverNonce.count >= 32 else {
                throw ClientError.security(.badNonceInvalid, "server nonce of \(session.serverNonce?.count ?? 0) bytes")
            }
            var clientSignature = SignatureData()
            clientSignature.algorithm = algorithms.asymmetricSignatureURI
            do { clientSignature.signature = try localKey.sign(serverCertificate + serverNonce, padding: algorithms.signaturePadding) } catch {
                throw ClientError.security(.badSecurityChecksFailed, "signing ActivateSession: \(error)")
            }
            activate.clientSignature = clientSignature
        }
        activate.userIdentityToken = try identityToken(from: endpoint.map { [$0] } ?? session.serverEndpoints,
                                                       channelPolicy: channelSecurity.policy,
                                                       serverCertificate: endpoint?.serverCertificate ?? session.serverCertificate,
                                                       serverNonce: session.serverNonce ?? [])
        do {
            _ = try transact(activate, as: ActivateSessionResponse.self, timeoutMs: options.connectTimeoutMs)
        } catch let status as StatusCode where status.isSecurityStatus {
            throw ClientError.security(status, "ActivateSession refused")
        }
        // Recreate every known subscription; fresh ones are created by the run loop.
        let known = lock.withLock { () -> [LocalSubscription] in
            let creating = Set(subscriptionsToCreate.map(\.id))
            return subscriptions.values.filter { !creating.contains($0.id) }.sorted { $0.id < $1.id }
        }
        for local in known { try createOnServer(local) }
        lastReceiveNs = Monotonic.nanoseconds()
        lock.withLock { sessionReady = true }
    }

    /// Connects the socket and runs HEL/ACK and OPN with `security` until the channel is open.
    func openChannel(_ security: ChannelSecurity) throws {
        let socket = try Socket.connect(host: endpoint.host, port: endpoint.port, timeoutMs: options.connectTimeoutMs)
        lock.withLock {
            authenticationToken = .null
            channel = ClientSecureChannel(endpointUrl: options.endpointURL, requestedLifetimeMs: options.channelLifetimeMs, security: security)
            fd = socket
            generation &+= 1
        }
        var opened = false
        do {
            try step(opened: &opened) { channel.start() }
            let deadline = Monotonic.nanoseconds() + UInt64(options.connectTimeoutMs) * 1_000_000
            while !opened {
                guard Monotonic.nanoseconds() < deadline else { throw ClientError.timeout }
                try pump(timeoutMs: 100, opened: &opened)
            }
        } catch ClientError.connectionLost(let reason) where lock.withLock({ channel.failure?.isSecurityStatus == true }) {
            // The server refused the channel with a security status (ERR), or its answer failed our checks: say which.
            throw ClientError.security(lock.withLock { channel.failure ?? .badSecurityChecksFailed }, reason)
        }
    }

    /// The endpoint of the configured policy and mode, its server certificate trusted.
    func chooseEndpoint(_ endpoints: [EndpointDescription], _ security: ClientSecurity) throws -> EndpointDescription {
        let binary = endpoints.filter { $0.transportProfileUri == nil || $0.transportProfileUri == transportProfileBinaryUri || $0.transportProfileUri == "" }
        guard let chosen = binary.first(where: { $0.securityPolicyUri == security.policy.uri && $0.securityMode == security.mode }) else {
            let offered = binary.map { "\(($0.securityPolicyUri ?? "").split(separator: "#").last ?? "?")/\($0.securityMode)" }
            throw ClientError.noSuitableEndpoint("no \(security.policy.rawValue)/\(security.mode) endpoint; the server offers \(offered.joined(separator: ", "))")
        }
        guard let certificate = chosen.serverCertificate, !certificate.isEmpty else {
            throw ClientError.security(.badCertificateInvalid, "the \(security.policy.rawValue) endpoint carries no server certificate")
        }
        if let status = security.trust.check(peerCertificate: certificate, expectedApplicationURI: chosen.server.applicationUri) {
            throw ClientError.security(status, "server certificate refused")
        }
        guard security.privateKey.matches(certificate: security.certificate) else {
            throw ClientError.security(.badCertificateInvalid, "the client's private key does not belong to its certificate")
        }
        return chosen
    }

    /// The user identity token for ActivateSession: anonymous, or user name and password, the password
    /// encrypted for the server as the token policy's (or else the channel's) security policy requires:
    /// the legacy secret `length (UInt32) + password + serverNonce` (Part 4, 7.36.2.2).
    func identityToken(from endpoints: [EndpointDescription], channelPolicy: SecurityPolicy = .none,
                       serverCertificate: [UInt8]? = nil, serverNonce: [UInt8] = []) throws -> ExtensionObject {
        let candidates = channelPolicy == .none
            ? endpoints.filter { $0.securityPolicyUri == securityPolicyNoneUri || $0.securityMode == .none }
            : endpoints.filter { $0.securityPolicyUri == channelPolicy.uri }
        let offering = candidates.isEmpty ? endpoints : candidates
        let policies = offering.flatMap(\.userIdentityTokens)
        switch options.security?.user ?? options.identity {
        case .anonymous:
            let policy = policies.first { $0.tokenType == .anonymous }
            if policy == nil && !endpoints.isEmpty { throw ClientError.noSuitableEndpoint("server offers no anonymous login") }
            return ExtensionObject(encodingId: AnonymousIdentityToken.encodingId, AnonymousIdentityToken(policyId: policy?.policyId ?? "anonymous"))
        case .userName(let user, let password):
            guard let policy = policies.first(where: { $0.tokenType == .userName }) else {
                throw ClientError.noSuitableEndpoint("server offers no user name login")
            }
            var token = UserNameIdentityToken(policyId: policy.policyId, userName: user, password: Array(password.utf8))
            let tokenPolicy = policy.securityPolicyUri.flatMap { $0.isEmpty ? nil : SecurityPolicy(uri: $0) } ?? channelPolicy
            if policy.securityPolicyUri.map({ !$0.isEmpty && SecurityPolicy(uri: $0) == nil }) == true {
                throw ClientError.noSuitableEndpoint("user token policy \(policy.securityPolicyUri ?? "") not supported")
            }
            if let algorithms = tokenPolicy.algorithms {
                // On a None channel the certificate comes with the endpoint that offers the token policy.
                let offeringCertificate = offering.first { $0.userIdentityTokens.contains(policy) }?.serverCertificate
                guard let serverCertificate = [serverCertificate, offeringCertificate].compactMap({ $0 }).first(where: { !$0.isEmpty }) else {
                    throw ClientError.security(.badCertificateInvalid, "no server certificate to encrypt the password with")
                }
                var secret = BinaryWriter()
                secret.write(UInt32(password.utf8.count + serverNonce.count))
                secret.writeRaw(Array(password.utf8))
                secret.writeRaw(serverNonce)
                do {
                    token.password = try RSAPublicKey(certificate: serverCertificate).encrypt(secret.bytes, padding: algorithms.encryptionPadding)
                } catch {
                    throw ClientError.security(.badCertificateInvalid, "encrypting the password: \(error)")
                }
                token.encryptionAlgorithm = algorithms.asymmetricEncryptionURI
            }
            return ExtensionObject(encodingId: UserNameIdentityToken.encodingId, token)
        }
    }

    func createOnServer(_ local: LocalSubscription) throws {
        var request = CreateSubscriptionRequest(publishingInterval: local.publishingIntervalMs)
        request.requestedMaxKeepAliveCount = UInt32(max(3, min(100, 5000 / max(local.publishingIntervalMs, 1))))
        request.requestedLifetimeCount = request.requestedMaxKeepAliveCount * 6
        let response = try transact(request, as: CreateSubscriptionResponse.self, timeoutMs: options.requestTimeoutMs)
        local.serverId = response.subscriptionId
        local.revisedIntervalMs = response.revisedPublishingInterval
        local.keepAliveMs = response.revisedPublishingInterval * Double(max(1, response.revisedMaxKeepAliveCount))
        subscriptionsByServerId[response.subscriptionId] = local
        var statuses: [StatusCode] = []
        let batch = 1000
        var start = 0
        while start < local.items.count {
            let slice = local.items[start..<min(local.items.count, start + batch)]
            let creates = slice.enumerated().map { offset, item in
                MonitoredItemCreateRequest(itemToMonitor: ReadValueId(nodeId: item.nodeId, attributeId: item.attribute),
                                           requestedParameters: MonitoringParameters(clientHandle: UInt32(start + offset),
                                                                                     samplingInterval: item.samplingIntervalMs,
                                                                                     queueSize: item.queueSize))
            }
            let items = try transact(CreateMonitoredItemsRequest(subscriptionId: response.subscriptionId, itemsToCreate: creates),
                                     as: CreateMonitoredItemsResponse.self, timeoutMs: options.requestTimeoutMs)
            statuses += items.results.map(\.statusCode)
            start += batch
        }
        local.itemStatuses = statuses
        if let created = local.created {
            local.created = nil
            created(.success(SubscriptionResult(handle: SubscriptionHandle(id: local.id), itemStatuses: statuses,
                                                revisedPublishingIntervalMs: response.revisedPublishingInterval)))
        }
    }

    func transact<Request: ServiceRequest, Response: ServiceResponse>(_ request: Request, as type: Response.Type,
                                                                              timeoutMs: Int) throws -> Response {
        try decodeServiceResponse(try transact(request, timeoutMs: timeoutMs), as: Response.self)
    }

    /// Sends a request from the I/O thread and pumps the socket until its response arrives, dispatching others.
    func transact<Request: ServiceRequest>(_ request: Request, timeoutMs: Int) throws -> [UInt8] {
        var request = request
        let requestId: UInt32 = lock.withLock {
            request.requestHeader = makeHeaderLocked(timeoutMs: timeoutMs)
            return channel.makeRequestId()
        }
        let message = encodeServiceMessage(request, encodingId: Request.encodingId)
        if let failure = submit(message, requestId: requestId, generation: nil, timeoutMs: timeoutMs, waiter: .ioThread) { throw failure }
        var opened = true
        let deadline = Monotonic.nanoseconds() + UInt64(timeoutMs) * 1_000_000
        while true {
            if let result = internalResults.removeValue(forKey: requestId) { return result }
            guard Monotonic.nanoseconds() < deadline else {
                lock.withLock { _ = pending.removeValue(forKey: requestId) }
                throw ClientError.timeout
            }
            try pump(timeoutMs: 50, opened: &opened)
        }
    }

    /// Runs one step of the channel under the lock, sends what it asks for, and hands each arrived response
    /// to its waiter after releasing the lock. A closed channel throws (after the responses are handed over).
    func step(opened: inout Bool, _ body: () throws -> [ChannelAction]) throws {
        var failure: (any Error)?
        var openedNow = false
        var needsFlush = false
        lock.lock()
        do {
            for action in try body() {
                switch action {
                case .send(let bytes):
                    if try writeLocked(bytes) { needsFlush = true }
                case .opened:
                    openedNow = true
                case .message(let requestId, let message):
                    guard let entry = pending.removeValue(forKey: requestId) else {
                        options.logger.debug("response for unknown request id \(requestId)")
                        continue
                    }
                    if case .ioThread = entry.waiter {
                        internalResults[requestId] = message
                    } else {
                        completions.append((entry.waiter, .success(message)))
                    }
                case .closed(let status, let reason):
                    if failure == nil { failure = ClientError.connectionLost("\(status): \(reason)") }
                }
            }
        } catch {
            failure = failure ?? error
        }
        lock.unlock()
        _ = needsFlush // the next pump polls for POLLOUT while the outbox holds bytes
        if openedNow {
            if opened { lock.withLock { renewals += 1 } }
            opened = true
        }
        deliverCompletions()
        if let failure { throw failure }
    }

    /// Resumes waiters collected by `step` or the timeout sweep (I/O thread, outside the lock).
    func deliverCompletions() {
        guard !completions.isEmpty else { return }
        var batch: [(Waiter, Result<[UInt8], any Error>)] = []
        swap(&batch, &completions)
        for (waiter, result) in batch { waiter.complete(result) }
        batch.removeAll(keepingCapacity: true)
        if completions.isEmpty { swap(&batch, &completions) }
    }

    /// Waits up to `timeoutMs` for socket data, room to send, or a wake-up, and feeds what arrived to the channel.
    func pump(timeoutMs: Int32, opened: inout Bool) throws {
        try runTasks()
        let wantsWrite = lock.withLock { !outbox.isEmpty }
        try watchSocket(Epoll.readable | (wantsWrite ? Epoll.writable : 0))
        let wait = taskExecutor.hasJobs ? 0 : timeoutMs
        var socketEvents: UInt32 = 0
        var woken = false
        try epoll.wait(timeoutMs: wait) { ready, events in
            if ready == fd { socketEvents = events } else { woken = true }
        }
        if woken { drainWake() }
        if socketEvents & Epoll.writable != 0 {
            try lock.withLock { try flushLocked() }
        }
        if socketEvents & Epoll.input != 0 {
            let count = try readBuffer.withUnsafeMutableBytes { try Socket.read(fd, into: $0, context: ioContext) }
            if count == 0 { throw ClientError.connectionLost("closed by server") }
            lastReceiveNs = Monotonic.nanoseconds()
            try step(opened: &opened) { channel.receive(readBuffer[0..<count], nowNs: lastReceiveNs) }
        }
        let now = Monotonic.nanoseconds()
        try step(opened: &opened) { channel.tick(nowNs: now) }
        // Tasks resumed by these responses run now, and their next requests leave together.
        try runTasks()
    }

    /// Registers the socket with `interest`, or changes its interest (I/O thread).
    func watchSocket(_ interest: UInt32) throws {
        guard socketInterest != interest, fd >= 0 else { return }
        if socketInterest == nil { try epoll.add(fd, interest) } else { try epoll.modify(fd, interest) }
        socketInterest = interest
    }

    func pump(timeoutMs: Int, opened: inout Bool) throws {
        try pump(timeoutMs: Int32(timeoutMs), opened: &opened)
    }

    func replenishPublish() throws {
        guard !subscriptionsByServerId.isEmpty else { return }
        while publishOutstanding < maxPublishOutstanding {
            var request = PublishRequest(acknowledgements: acknowledgements)
            acknowledgements = []
            let maxInterval = subscriptionsByServerId.values.map(\.revisedIntervalMs).max() ?? 1000
            let timeout = Int(max(60_000, maxInterval * 200))
            let requestId: UInt32 = lock.withLock {
                request.requestHeader = makeHeaderLocked(timeoutMs: timeout)
                return channel.makeRequestId()
            }
            publishOutstanding += 1
            let message = encodeServiceMessage(request, encodingId: PublishRequest.encodingId)
            if let failure = submit(message, requestId: requestId, generation: nil, timeoutMs: timeout,
                                    waiter: .callback({ [weak self] result in self?.handlePublish(result) })) {
                throw failure
            }
        }
    }

    /// Runs on the I/O thread (from `step`).
    func handlePublish(_ result: Result<[UInt8], any Error>) {
        publishOutstanding = max(0, publishOutstanding - 1)
        guard case .success(let bytes) = result else { return }
        do {
            let response = try decodeServiceResponse(bytes, as: PublishResponse.self)
            let message = response.notificationMessage
            guard let local = subscriptionsByServerId[response.subscriptionId] else { return }
            if !message.notificationData.isEmpty {
                acknowledgements.append(SubscriptionAcknowledgement(subscriptionId: response.subscriptionId, sequenceNumber: message.sequenceNumber))
            }
            for data in message.notificationData where data.typeId == NodeId(DataChangeNotification.encodingId) {
                guard let change = try data.decodeBody(DataChangeNotification.self) else { continue }
                for item in change.monitoredItems where !local.deleted { local.handler(item.clientHandle, item.value) }
            }
            if !message.notificationData.isEmpty, !local.deleted { local.published?() }
        } catch let status as StatusCode {
            if status == .badTooManyPublishRequests { maxPublishOutstanding = max(1, maxPublishOutstanding - 1) }
            if status == .badSessionIdInvalid || status == .badSessionClosed || status == .badSubscriptionIdInvalid {
                lock.withLock { reconnectRequested = true }
            }
        } catch {
            options.logger.warning("bad publish response: \(error)")
        }
    }
}
