import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Services: discovery, session, attribute and view services

extension OPCUAServer {
    final class Session {
        let id: NodeId
        let token: NodeId
        var timeoutNs: UInt64
        var lastActivityNs: UInt64
        var fd: Int32?
        var activated = false
        var subscriptions: [UInt32: Subscription] = [:]
        var publishQueue: [QueuedPublish] = []
        var continuationPoints: [[UInt8]: [ReferenceDescription]] = [:]
        /// The latest server nonce sent (CreateSession, then each ActivateSession): what the client signs
        /// and appends to an encrypted password.
        var nonce: [UInt8] = []
        /// The client certificate of the channel the session was created on (secured policies).
        var clientCertificate: [UInt8]?
        init(id: NodeId, token: NodeId, timeoutNs: UInt64, nowNs: UInt64) {
            self.id = id; self.token = token; self.timeoutNs = timeoutNs; lastActivityNs = nowNs
        }
    }

    func dispatch(_ body: [UInt8], requestId: UInt32, _ connection: Connection) {
        var reader = BinaryReader(body)
        let now = Monotonic.nanoseconds()
        var handleId: UInt32 = 0
        do {
            let typeId = try readServiceTypeId(&reader)
            // Every request starts with its header: peek at it for the handle and token.
            var peek = reader
            let header = try RequestHeader(from: &peek)
            handleId = header.requestHandle
            switch typeId {
            case GetEndpointsRequest.encodingId:
                var response = GetEndpointsResponse(endpoints: endpoints())
                response.responseHeader.requestHandle = handleId
                return respond(response, requestId: requestId, connection)
            case FindServersRequest.encodingId:
                var response = FindServersResponse(servers: [applicationDescription()])
                response.responseHeader.requestHandle = handleId
                return respond(response, requestId: requestId, connection)
            case CreateSessionRequest.encodingId:
                let request = try CreateSessionRequest(from: &reader)
                return createSession(request, requestId: requestId, connection, now: now)
            case CloseSecureChannelRequest.encodingId:
                connection.closing = true
                return
            default:
                break
            }
            guard let session = sessions[header.authenticationToken] else {
                return fault(.badSessionIdInvalid, handle: handleId, requestId: requestId, connection)
            }
            if typeId == ActivateSessionRequest.encodingId {
                let request = try ActivateSessionRequest(from: &reader)
                return activateSession(request, session, requestId: requestId, connection)
            }
            guard session.activated, session.fd == connection.fd else {
                return fault(.badSessionNotActivated, handle: handleId, requestId: requestId, connection)
            }
            session.lastActivityNs = now
            switch typeId {
            case CloseSessionRequest.encodingId:
                sessions[session.token] = nil
                var response = CloseSessionResponse()
                response.responseHeader.requestHandle = handleId
                respond(response, requestId: requestId, connection)
            case ReadRequest.encodingId:
                respondRead(try ReadRequest(from: &reader), requestId: requestId, connection)
            case WriteRequest.encodingId:
                respondWrite(try WriteRequest(from: &reader), requestId: requestId, connection)
            case BrowseRequest.encodingId:
                respondBrowse(try BrowseRequest(from: &reader), session, requestId: requestId, connection)
            case BrowseNextRequest.encodingId:
                respondBrowseNext(try BrowseNextRequest(from: &reader), session, requestId: requestId, connection)
            case TranslateBrowsePathsRequest.encodingId:
                let request = try TranslateBrowsePathsRequest(from: &reader)
                guard request.browsePaths.count <= options.maxOperationsPerRequest else { throw StatusCode.badTooManyOperations }
                let results = lock.withLock { request.browsePaths.map { space.translate($0) } }
                var response = TranslateBrowsePathsResponse(results: results)
                response.responseHeader.requestHandle = handleId
                respond(response, requestId: requestId, connection)
            case CreateSubscriptionRequest.encodingId:
                createSubscription(try CreateSubscriptionRequest(from: &reader), session, requestId: requestId, connection, now: now)
            case ModifySubscriptionRequest.encodingId:
                modifySubscription(try ModifySubscriptionRequest(from: &reader), session, requestId: requestId, connection)
            case SetPublishingModeRequest.encodingId:
                let request = try SetPublishingModeRequest(from: &reader)
                let results = request.subscriptionIds.map { id -> StatusCode in
                    guard let subscription = session.subscriptions[id] else { return .badSubscriptionIdInvalid }
                    subscription.publishingEnabled = request.publishingEnabled
                    return .good
                }
                var response = SetPublishingModeResponse(results: results)
                response.responseHeader.requestHandle = handleId
                respond(response, requestId: requestId, connection)
            case DeleteSubscriptionsRequest.encodingId:
                let request = try DeleteSubscriptionsRequest(from: &reader)
                let results = request.subscriptionIds.map { id -> StatusCode in
                    session.subscriptions.removeValue(forKey: id) == nil ? .badSubscriptionIdInvalid : .good
                }
                var response = DeleteSubscriptionsResponse(results: results)
                response.responseHeader.requestHandle = handleId
                respond(response, requestId: requestId, connection)
                if session.subscriptions.isEmpty { failQueuedPublishes(session, .badNoSubscription) }
            case CreateMonitoredItemsRequest.encodingId:
                createMonitoredItems(try CreateMonitoredItemsRequest(from: &reader), session, requestId: requestId, connection, now: now)
            case DeleteMonitoredItemsRequest.encodingId:
                let request = try DeleteMonitoredItemsRequest(from: &reader)
                guard let subscription = session.subscriptions[request.subscriptionId] else { throw StatusCode.badSubscriptionIdInvalid }
                let results = request.monitoredItemIds.map { id -> StatusCode in
                    subscription.items.removeValue(forKey: id) == nil ? .badMonitoredItemIdInvalid : .good
                }
                var response = DeleteMonitoredItemsResponse(results: results)
                response.responseHeader.requestHandle = handleId
                respond(response, requestId: requestId, connection)
            case PublishRequest.encodingId:
                queuePublish(try PublishRequest(from: &reader), session, requestId: requestId, connection, now: now)
            case RepublishRequest.encodingId:
                let request = try RepublishRequest(from: &reader)
                guard let subscription = session.subscriptions[request.subscriptionId] else { throw StatusCode.badSubscriptionIdInvalid }
                guard let message = subscription.retransmit.first(where: { $0.sequenceNumber == request.retransmitSequenceNumber }) else {
                    throw StatusCode.badMessageNotAvailable
                }
                var response = RepublishResponse(notificationMessage: message)
                response.responseHeader.requestHandle = handleId
                respond(response, requestId: requestId, connection)
            default:
                fault(.badServiceUnsupported, handle: handleId, requestId: requestId, connection)
            }
        } catch let status as StatusCode {
            fault(status, handle: handleId, requestId: requestId, connection)
        } catch {
            fault(.badDecodingError, handle: handleId, requestId: requestId, connection)
        }
    }

    func applicationDescription() -> ApplicationDescription {
        // With security, the URI of the certificate (clients check that they agree).
        ApplicationDescription(applicationUri: options.security?.applicationURI ?? options.applicationUri, productUri: "urn:linemes:opcua",
                               applicationName: LocalizedText(options.applicationName, locale: "en"),
                               applicationType: .server, discoveryUrls: [endpointURL])
    }

    func endpoints() -> [EndpointDescription] {
        guard let security = options.security else {
            let endpoint = EndpointDescription(endpointUrl: endpointURL, server: applicationDescription(), securityMode: .none,
                                               securityPolicyUri: securityPolicyNoneUri,
                                               userIdentityTokens: [UserTokenPolicy(policyId: "anonymous", tokenType: .anonymous)])
            return [endpoint]
        }
        // A password over a None channel is encrypted with the first secured policy offered (if any).
        let passwordPolicy = security.endpoints.first { $0.0 != .none }?.0
        return security.endpoints.map { policy, mode in
            var tokens: [UserTokenPolicy]
            if security.users.isEmpty {
                tokens = [UserTokenPolicy(policyId: "anonymous", tokenType: .anonymous)]
            } else if policy == .none {
                tokens = passwordPolicy.map { [UserTokenPolicy(policyId: "username", tokenType: .userName, securityPolicyUri: $0.uri)] } ?? []
            } else {
                // Named explicitly (an empty URI means "the channel's policy"; some clients read it as None).
                tokens = [UserTokenPolicy(policyId: "username", tokenType: .userName, securityPolicyUri: policy.uri)]
            }
            var endpoint = EndpointDescription(endpointUrl: endpointURL, server: applicationDescription(), securityMode: mode,
                                               securityPolicyUri: policy.uri, userIdentityTokens: tokens)
            endpoint.serverCertificate = security.certificate
            // Stronger endpoints rank higher (Part 4, 7.14).
            endpoint.securityLevel = UInt8((mode == .signAndEncrypt ? 2 : mode == .sign ? 1 : 0) * 10
                                           + (policy == .aes256Sha256RsaPss ? 3 : policy == .basic256Sha256 ? 2 : policy == .aes128Sha256RsaOaep ? 1 : 0))
            return endpoint
        }
    }

    /// nil when a session may be created or activated on this connection's channel, else the status to refuse it:
    /// a None channel serves sessions only when None is among the endpoints.
    func sessionRefusal(_ connection: Connection) -> StatusCode? {
        guard let security = options.security, connection.channel.securityPolicy == .none else { return nil }
        return security.offers(.none, .none) ? nil : .badSecurityPolicyRejected
    }

    func createSession(_ request: CreateSessionRequest, requestId: UInt32, _ connection: Connection, now: UInt64) {
        let handle = request.requestHeader.requestHandle
        if let refusal = sessionRefusal(connection) { return fault(refusal, handle: handle, requestId: requestId, connection) }
        guard sessions.count < options.maxSessions else {
            return fault(.badTooManySessions, handle: handle, requestId: requestId, connection)
        }
        var serverSignature = SignatureData()
        if let security = options.security, let algorithms = connection.channel.securityPolicy.algorithms {
            // The session's client certificate is the channel's, trusted for the ApplicationUri it claims.
            guard let certificate = request.clientCertificate, certificate == connection.channel.peerCertificate else {
                return fault(.badCertificateInvalid, handle: handle, requestId: requestId, connection)
            }
            if let status = security.trust.check(peerCertificate: certificate, expectedApplicationURI: request.clientDescription.applicationUri) {
                return fault(status, handle: handle, requestId: requestId, connection)
            }
            guard let clientNonce = request.clientNonce, clientNonce.count >= 32 else {
                return fault(.badNonceInvalid, handle: handle, requestId: requestId, connection)
            }
            serverSignature.algorithm = algorithms.asymmetricSignatureURI
            serverSignature.signature = try? security.privateKey.sign(certificate + clientNonce, padding: algorithms.signaturePadding)
            guard serverSignature.signature != nil else { return fault(.badSecurityChecksFailed, handle: handle, requestId: requestId, connection) }
        }
        let id = NodeId(namespace: 1, .guid(UUID()))
        let token = NodeId(namespace: 1, .opaque(Crypto.randomBytes(32)))
        let timeout = min(max(request.requestedSessionTimeout, 10_000), 3_600_000)
        let session = Session(id: id, token: token, timeoutNs: UInt64(timeout * 1_000_000), nowNs: now)
        session.fd = connection.fd
        session.nonce = Crypto.randomBytes(32)
        session.clientCertificate = connection.channel.peerCertificate
        sessions[token] = session
        var response = CreateSessionResponse(sessionId: id, authenticationToken: token, revisedSessionTimeout: timeout)
        response.responseHeader.requestHandle = handle
        response.serverNonce = session.nonce
        response.serverEndpoints = endpoints()
        if let security = options.security, connection.channel.securityPolicy != .none {
            response.serverCertificate = security.certificate
        }
        response.serverSignature = serverSignature
        response.maxRequestMessageSize = connection.channel.limits.maxMessageSize
        respond(response, requestId: requestId, connection)
    }

    func activateSession(_ request: ActivateSessionRequest, _ session: Session, requestId: UInt32, _ connection: Connection) {
        let handle = request.requestHeader.requestHandle
        if let refusal = sessionRefusal(connection) { return fault(refusal, handle: handle, requestId: requestId, connection) }
        if let security = options.security, let algorithms = connection.channel.securityPolicy.algorithms {
            // The client proves it holds the key of its certificate: its signature over ours and our last nonce.
            guard connection.channel.peerCertificate == session.clientCertificate, let peerKey = connection.channel.peerKey,
                  let signature = request.clientSignature.signature,
                  peerKey.verify(signature, of: security.certificate + session.nonce, padding: algorithms.signaturePadding) else {
                return fault(.badApplicationSignatureInvalid, handle: handle, requestId: requestId, connection)
            }
        }
        let user: String?
        switch checkIdentity(request.userIdentityToken, session, connection) {
        case .failure(let status): return fault(status, handle: handle, requestId: requestId, connection)
        case .success(let name): user = name
        }
        let activation = SessionActivation(policy: connection.channel.securityPolicy, mode: connection.channel.securityMode, user: user)
        lock.withLock {
            activations.append(activation)
            if activations.count > 100 { activations.removeFirst(activations.count - 100) }
        }
        session.activated = true
        session.fd = connection.fd
        session.lastActivityNs = Monotonic.nanoseconds()
        session.nonce = Crypto.randomBytes(32)
        var response = ActivateSessionResponse()
        response.responseHeader.requestHandle = handle
        response.serverNonce = session.nonce
        respond(response, requestId: requestId, connection)
    }

    /// The user (nil: anonymous) when the identity token is accepted: anonymous while no users are configured,
    /// else a configured user name with its password (decrypted with the server's key when the client
    /// encrypted it); the status to refuse with otherwise.
    func checkIdentity(_ token: ExtensionObject, _ session: Session, _ connection: Connection) -> Result<String?, StatusCode> {
        func refuse(_ status: StatusCode, _ reason: String) -> Result<String?, StatusCode> {
            options.logger.warning("session login refused (\(status)): \(reason)")
            return .failure(status)
        }
        let users = options.security?.users ?? [:]
        let type = token.typeId
        // An empty token is taken as anonymous, as many clients send it that way.
        if type == NodeId(AnonymousIdentityToken.encodingId) || type.isNull {
            return users.isEmpty ? .success(nil) : refuse(.badIdentityTokenInvalid, "anonymous, but only user names may log in")
        }
        guard type == NodeId(UserNameIdentityToken.encodingId), !users.isEmpty, let security = options.security else {
            return refuse(.badIdentityTokenInvalid, "token type \(type) not offered")
        }
        guard let decoded = try? token.decodeBody(UserNameIdentityToken.self), let user = decoded.userName,
              let sent = decoded.password else { return refuse(.badIdentityTokenInvalid, "undecodable user name token") }
        let password: [UInt8]
        if let algorithm = decoded.encryptionAlgorithm, !algorithm.isEmpty {
            guard let padding = encryptionPadding(algorithmURI: algorithm) else {
                return refuse(.badIdentityTokenInvalid, "password encryption \(algorithm) not supported")
            }
            guard let plain = try? security.privateKey.decrypt(sent[...], padding: padding), plain.count >= 4 else {
                return refuse(.badIdentityTokenInvalid, "password of \(sent.count) bytes does not decrypt with \(algorithm)")
            }
            // The length field bounds the secret: some clients (open62541) encrypt a whole block, zero-filled after it.
            let length = Int(UInt32(plain[0]) | UInt32(plain[1]) << 8 | UInt32(plain[2]) << 16 | UInt32(plain[3]) << 24)
            guard length <= plain.count - 4, length >= session.nonce.count,
                  constantTimeEqual(plain[(4 + length - session.nonce.count)..<(4 + length)], session.nonce) else {
                return refuse(.badIdentityTokenInvalid, "password secret of \(plain.count) bytes (length field \(length)) does not end with the session nonce")
            }
            password = Array(plain[4..<(4 + length - session.nonce.count)])
        } else {
            // A password in clear only inside an encrypted channel.
            guard connection.channel.securityMode == .signAndEncrypt else {
                return refuse(.badIdentityTokenInvalid, "password in clear outside an encrypted channel")
            }
            password = sent
        }
        guard let expected = users[user], constantTimeEqual(password[...], Array(expected.utf8)) else {
            return refuse(.badUserAccessDenied, "wrong user name or password for \"\(user)\"")
        }
        return .success(user)
    }

    func respondRead(_ request: ReadRequest, requestId: UInt32, _ connection: Connection) {
        let handle = request.requestHeader.requestHandle
        guard request.timestampsToReturn != .invalid else { return fault(.badTimestampsToReturnInvalid, handle: handle, requestId: requestId, connection) }
        guard !request.nodesToRead.isEmpty else { return fault(.badNothingToDo, handle: handle, requestId: requestId, connection) }
        guard request.nodesToRead.count <= options.maxOperationsPerRequest else {
            return fault(.badTooManyOperations, handle: handle, requestId: requestId, connection)
        }
        let now = DateTime.now
        let results = lock.withLock { request.nodesToRead.map { space.read($0) } }.map { value in
            filterTimestamps(value, request.timestampsToReturn, now: now)
        }
        var response = ReadResponse(results: results)
        response.responseHeader.requestHandle = handle
        respond(response, requestId: requestId, connection)
    }

    func filterTimestamps(_ value: DataValue, _ which: TimestampsToReturn, now: DateTime) -> DataValue {
        var value = value
        guard value.value != nil else { return value }
        switch which {
        case .source: value.serverTimestamp = nil
        case .server: value.sourceTimestamp = nil; value.serverTimestamp = now
        case .neither: value.sourceTimestamp = nil; value.serverTimestamp = nil
        default: value.serverTimestamp = now
        }
        return value
    }

    func respondWrite(_ request: WriteRequest, requestId: UInt32, _ connection: Connection) {
        let handle = request.requestHeader.requestHandle
        guard !request.nodesToWrite.isEmpty else { return fault(.badNothingToDo, handle: handle, requestId: requestId, connection) }
        guard request.nodesToWrite.count <= options.maxOperationsPerRequest else {
            return fault(.badTooManyOperations, handle: handle, requestId: requestId, connection)
        }
        let handler = lock.withLock { writeHandler }
        var results: [StatusCode] = []
        for item in request.nodesToWrite {
            let check: StatusCode = lock.withLock {
                guard let node = space.nodes[item.nodeId] else { return .badNodeIdUnknown }
                guard item.attributeId == AttributeId.value.rawValue else {
                    return AttributeId(rawValue: item.attributeId) == nil ? .badAttributeIdInvalid : .badNotWritable
                }
                guard node.nodeClass == .variable, node.writable else { return .badNotWritable }
                guard item.indexRange == nil || item.indexRange == "" else { return .badWriteNotSupported }
                guard let value = item.value.value else { return .badTypeMismatch }
                if node.dataType != NodeId(24), value.type?.dataTypeId != node.dataType { return .badTypeMismatch }
                return .good
            }
            guard check == .good, let value = item.value.value else { results.append(check); continue }
            let verdict = handler?(item.nodeId, value) ?? .good
            if verdict.isGood {
                let source = item.value.sourceTimestamp?.date
                try? setValue(nodeId: item.nodeId, value: value, status: item.value.status ?? .good, sourceTime: source)
            }
            results.append(verdict)
        }
        var response = WriteResponse(results: results)
        response.responseHeader.requestHandle = handle
        respond(response, requestId: requestId, connection)
    }

    func makeContinuation(_ rest: [ReferenceDescription], _ session: Session) -> [UInt8]? {
        guard !rest.isEmpty, session.continuationPoints.count < 100 else { return nil }
        let point = (0..<16).map { _ in UInt8.random(in: 0...255) }
        session.continuationPoints[point] = rest
        return point
    }

    func respondBrowse(_ request: BrowseRequest, _ session: Session, requestId: UInt32, _ connection: Connection) {
        let handle = request.requestHeader.requestHandle
        guard !request.nodesToBrowse.isEmpty else { return fault(.badNothingToDo, handle: handle, requestId: requestId, connection) }
        guard request.nodesToBrowse.count <= options.maxOperationsPerRequest else {
            return fault(.badTooManyOperations, handle: handle, requestId: requestId, connection)
        }
        let limit = request.requestedMaxReferencesPerNode == 0 ? Int.max : Int(request.requestedMaxReferencesPerNode)
        let outcomes = lock.withLock { request.nodesToBrowse.map { space.browse($0) } }
        let results = outcomes.map { outcome -> BrowseResult in
            switch outcome {
            case .failure(let status):
                return BrowseResult(statusCode: status, continuationPoint: nil, references: [])
            case .success(let references):
                if references.count <= limit { return BrowseResult(statusCode: .good, continuationPoint: nil, references: references) }
                let point = makeContinuation(Array(references[limit...]), session)
                return BrowseResult(statusCode: point == nil ? .badNoContinuationPoints : .good, continuationPoint: point,
                                    references: point == nil ? [] : Array(references[..<limit]))
            }
        }
        var response = BrowseResponse(results: results)
        response.responseHeader.requestHandle = handle
        respond(response, requestId: requestId, connection)
    }

    func respondBrowseNext(_ request: BrowseNextRequest, _ session: Session, requestId: UInt32, _ connection: Connection) {
        let handle = request.requestHeader.requestHandle
        let results = request.continuationPoints.map { point -> BrowseResult in
            guard let point, let rest = session.continuationPoints.removeValue(forKey: point) else {
                return BrowseResult(statusCode: .badContinuationPointInvalid, continuationPoint: nil, references: [])
            }
            if request.releaseContinuationPoints { return BrowseResult(statusCode: .good, continuationPoint: nil, references: []) }
            // Keep the page size of the first call: the number of references it returned is not known here, so use 1000.
            let page = min(rest.count, 1000)
            let next = makeContinuation(Array(rest[page...]), session)
            return BrowseResult(statusCode: .good, continuationPoint: next, references: Array(rest[..<page]))
        }
        var response = BrowseNextResponse(results: results)
        response.responseHeader.requestHandle = handle
        respond(response, requestId: requestId, connection)
    }

}
