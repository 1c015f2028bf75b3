import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Subscriptions: subscriptions, monitored items, sampling and publishing

extension OPCUAServer {
    struct QueuedPublish {
        var fd: Int32
        var requestId: UInt32
        var requestHandle: UInt32
        var deadlineNs: UInt64
        var results: [StatusCode]
    }

    final class MonitoredItem {
        let id: UInt32
        let clientHandle: UInt32
        let nodeId: NodeId
        let attributeId: UInt32
        var samplingNs: UInt64
        var queueSize: Int
        var discardOldest: Bool
        var trigger: UInt32 = 1
        var deadband: Double = 0
        var nextSampleNs: UInt64 = 0
        var lastVersion: UInt64 = .max
        var lastValue: DataValue?
        var queue: [DataValue] = []
        var mode: MonitoringMode
        init(id: UInt32, clientHandle: UInt32, nodeId: NodeId, attributeId: UInt32, samplingNs: UInt64, queueSize: Int,
             discardOldest: Bool, mode: MonitoringMode) {
            self.id = id; self.clientHandle = clientHandle; self.nodeId = nodeId; self.attributeId = attributeId
            self.samplingNs = samplingNs; self.queueSize = queueSize; self.discardOldest = discardOldest; self.mode = mode
        }
    }

    final class Subscription {
        let id: UInt32
        var intervalNs: UInt64
        var maxKeepAlive: UInt32
        var lifetimeCount: UInt32
        var maxNotifications: UInt32
        var publishingEnabled: Bool
        var timestamps: TimestampsToReturn = .both
        var items: [UInt32: MonitoredItem] = [:]
        var nextPublishNs: UInt64
        var keepAliveCounter: UInt32
        var lifetimeCounter: UInt32 = 0
        var sequenceNumber: UInt32 = 1
        var late = false
        var retransmit: [NotificationMessage] = []
        var firstMessageSent = false
        init(id: UInt32, intervalNs: UInt64, maxKeepAlive: UInt32, lifetimeCount: UInt32, maxNotifications: UInt32,
             publishingEnabled: Bool, nowNs: UInt64) {
            self.id = id; self.intervalNs = intervalNs; self.maxKeepAlive = maxKeepAlive; self.lifetimeCount = lifetimeCount
            self.maxNotifications = maxNotifications; self.publishingEnabled = publishingEnabled
            nextPublishNs = nowNs + intervalNs
            keepAliveCounter = maxKeepAlive
        }
        var hasNotifications: Bool { items.values.contains { !$0.queue.isEmpty } }
    }


    func nextTimerMs(_ now: UInt64) -> Int32 {
        var next = now + 50_000_000
        for session in sessions.values {
            for subscription in session.subscriptions.values {
                next = min(next, subscription.nextPublishNs)
                for item in subscription.items.values { next = min(next, item.nextSampleNs) }
            }
        }
        return next <= now ? 0 : Int32((next - now + 999_999) / 1_000_000)
    }

    func reviseInterval(_ requested: Double) -> Double {
        requested.isNaN || requested < options.minPublishingIntervalMs ? options.minPublishingIntervalMs : min(requested, 3_600_000)
    }

    func createSubscription(_ request: CreateSubscriptionRequest, _ session: Session, requestId: UInt32, _ connection: Connection, now: UInt64) {
        let handle = request.requestHeader.requestHandle
        guard session.subscriptions.count < options.maxSubscriptionsPerSession else {
            return fault(.badTooManySubscriptions, handle: handle, requestId: requestId, connection)
        }
        nextSubscriptionId &+= 1
        let interval = reviseInterval(request.requestedPublishingInterval)
        let keepAlive = max(1, min(request.requestedMaxKeepAliveCount, 10_000))
        let lifetime = max(keepAlive * 3, request.requestedLifetimeCount)
        let subscription = Subscription(id: nextSubscriptionId, intervalNs: UInt64(interval * 1_000_000), maxKeepAlive: keepAlive,
                                        lifetimeCount: lifetime, maxNotifications: request.maxNotificationsPerPublish,
                                        publishingEnabled: request.publishingEnabled, nowNs: now)
        session.subscriptions[subscription.id] = subscription
        var response = CreateSubscriptionResponse(subscriptionId: subscription.id, revisedPublishingInterval: interval,
                                                  revisedLifetimeCount: lifetime, revisedMaxKeepAliveCount: keepAlive)
        response.responseHeader.requestHandle = handle
        respond(response, requestId: requestId, connection)
    }

    func modifySubscription(_ request: ModifySubscriptionRequest, _ session: Session, requestId: UInt32, _ connection: Connection) {
        guard let subscription = session.subscriptions[request.subscriptionId] else {
            return fault(.badSubscriptionIdInvalid, handle: request.requestHeader.requestHandle, requestId: requestId, connection)
        }
        let interval = reviseInterval(request.requestedPublishingInterval)
        subscription.intervalNs = UInt64(interval * 1_000_000)
        subscription.maxKeepAlive = max(1, min(request.requestedMaxKeepAliveCount, 10_000))
        subscription.lifetimeCount = max(subscription.maxKeepAlive * 3, request.requestedLifetimeCount)
        subscription.maxNotifications = request.maxNotificationsPerPublish
        var response = ModifySubscriptionResponse(revisedPublishingInterval: interval, revisedLifetimeCount: subscription.lifetimeCount,
                                                  revisedMaxKeepAliveCount: subscription.maxKeepAlive)
        response.responseHeader.requestHandle = request.requestHeader.requestHandle
        respond(response, requestId: requestId, connection)
    }

    func createMonitoredItems(_ request: CreateMonitoredItemsRequest, _ session: Session, requestId: UInt32,
                                      _ connection: Connection, now: UInt64) {
        let handle = request.requestHeader.requestHandle
        guard let subscription = session.subscriptions[request.subscriptionId] else {
            return fault(.badSubscriptionIdInvalid, handle: handle, requestId: requestId, connection)
        }
        guard request.timestampsToReturn != .invalid else { return fault(.badTimestampsToReturnInvalid, handle: handle, requestId: requestId, connection) }
        guard !request.itemsToCreate.isEmpty else { return fault(.badNothingToDo, handle: handle, requestId: requestId, connection) }
        guard request.itemsToCreate.count <= options.maxOperationsPerRequest else {
            return fault(.badTooManyOperations, handle: handle, requestId: requestId, connection)
        }
        subscription.timestamps = request.timestampsToReturn
        var results: [MonitoredItemCreateResult] = []
        for create in request.itemsToCreate {
            let probe = lock.withLock { space.read(create.itemToMonitor) }
            if let status = probe.status, status == .badNodeIdUnknown || status == .badAttributeIdInvalid {
                results.append(MonitoredItemCreateResult(statusCode: status, monitoredItemId: 0, revisedSamplingInterval: 0, revisedQueueSize: 0))
                continue
            }
            guard subscription.items.count < options.maxMonitoredItemsPerSubscription else {
                results.append(MonitoredItemCreateResult(statusCode: .badTooManyOperations, monitoredItemId: 0, revisedSamplingInterval: 0, revisedQueueSize: 0))
                continue
            }
            let parameters = create.requestedParameters
            var trigger: UInt32 = 1
            var deadband: Double = 0
            if parameters.filter.typeId == NodeId(724), case .binary(let bytes) = parameters.filter.body {
                var reader = BinaryReader(bytes)
                trigger = (try? reader.readUInt32()) ?? 1
                let deadbandType = (try? reader.readUInt32()) ?? 0
                let value = (try? reader.readDouble()) ?? 0
                if deadbandType == 1 { deadband = value } else if deadbandType != 0 {
                    results.append(MonitoredItemCreateResult(statusCode: .badMonitoredItemFilterUnsupported, monitoredItemId: 0,
                                                             revisedSamplingInterval: 0, revisedQueueSize: 0))
                    continue
                }
            } else if !parameters.filter.typeId.isNull {
                results.append(MonitoredItemCreateResult(statusCode: .badMonitoredItemFilterUnsupported, monitoredItemId: 0,
                                                         revisedSamplingInterval: 0, revisedQueueSize: 0))
                continue
            }
            var sampling = parameters.samplingInterval
            if sampling < 0 || sampling.isNaN { sampling = Double(subscription.intervalNs) / 1_000_000 }
            sampling = max(sampling, options.minSamplingIntervalMs)
            let queueSize = Int(max(1, min(parameters.queueSize, 1000)))
            nextMonitoredItemId &+= 1
            let item = MonitoredItem(id: nextMonitoredItemId, clientHandle: parameters.clientHandle, nodeId: create.itemToMonitor.nodeId,
                                     attributeId: create.itemToMonitor.attributeId, samplingNs: UInt64(sampling * 1_000_000),
                                     queueSize: queueSize, discardOldest: parameters.discardOldest, mode: create.monitoringMode)
            item.trigger = trigger
            item.deadband = deadband
            item.nextSampleNs = now
            subscription.items[item.id] = item
            results.append(MonitoredItemCreateResult(statusCode: .good, monitoredItemId: item.id, revisedSamplingInterval: sampling,
                                                     revisedQueueSize: UInt32(queueSize)))
        }
        var response = CreateMonitoredItemsResponse(results: results)
        response.responseHeader.requestHandle = handle
        respond(response, requestId: requestId, connection)
    }

    func queuePublish(_ request: PublishRequest, _ session: Session, requestId: UInt32, _ connection: Connection, now: UInt64) {
        let handle = request.requestHeader.requestHandle
        let results = request.subscriptionAcknowledgements.map { ack -> StatusCode in
            guard let subscription = session.subscriptions[ack.subscriptionId] else { return .badSubscriptionIdInvalid }
            guard let index = subscription.retransmit.firstIndex(where: { $0.sequenceNumber == ack.sequenceNumber }) else {
                return .badSequenceNumberUnknown
            }
            subscription.retransmit.remove(at: index)
            return .good
        }
        guard !session.subscriptions.isEmpty else {
            return fault(.badNoSubscription, handle: handle, requestId: requestId, connection)
        }
        let timeoutHint = request.requestHeader.timeoutHint
        let deadline = timeoutHint == 0 ? UInt64.max : now + UInt64(timeoutHint) * 1_000_000
        session.publishQueue.append(QueuedPublish(fd: connection.fd, requestId: requestId, requestHandle: handle, deadlineNs: deadline, results: results))
        if session.publishQueue.count > options.maxPublishRequestsPerSession {
            let oldest = session.publishQueue.removeFirst()
            if let target = connections[oldest.fd] {
                fault(.badTooManyPublishRequests, handle: oldest.requestHandle, requestId: oldest.requestId, target)
            }
        }
        // Serve a late subscription at once.
        for subscription in session.subscriptions.values.sorted(by: { $0.id < $1.id }) where subscription.late {
            if !publish(subscription, session, now: now) { break }
        }
    }

    func failQueuedPublishes(_ session: Session, _ status: StatusCode) {
        let queued = session.publishQueue
        session.publishQueue.removeAll()
        for entry in queued {
            if let target = connections[entry.fd] { fault(status, handle: entry.requestHandle, requestId: entry.requestId, target) }
        }
    }

    /// Sends a notification or keep-alive for `subscription` if a publish request is queued; false if none was.
    @discardableResult
    func publish(_ subscription: Subscription, _ session: Session, now: UInt64) -> Bool {
        guard !session.publishQueue.isEmpty else {
            subscription.late = true
            return false
        }
        let entry = session.publishQueue.removeFirst()
        guard let connection = connections[entry.fd] else { return publish(subscription, session, now: now) }
        var notifications: [MonitoredItemNotification] = []
        let limit = subscription.maxNotifications == 0 ? 10_000 : Int(subscription.maxNotifications)
        var more = false
        if subscription.publishingEnabled {
            for item in subscription.items.values.sorted(by: { $0.id < $1.id }) where !item.queue.isEmpty {
                let room = limit - notifications.count
                if room <= 0 { more = true; break }
                let take = min(room, item.queue.count)
                for value in item.queue[..<take] { notifications.append(MonitoredItemNotification(clientHandle: item.clientHandle, value: value)) }
                item.queue.removeFirst(take)
                if !item.queue.isEmpty { more = true }
            }
        }
        let message: NotificationMessage
        if notifications.isEmpty {
            message = NotificationMessage(sequenceNumber: subscription.sequenceNumber, publishTime: .now, notificationData: [])
        } else {
            let data = ExtensionObject(encodingId: DataChangeNotification.encodingId, DataChangeNotification(monitoredItems: notifications))
            message = NotificationMessage(sequenceNumber: subscription.sequenceNumber, publishTime: .now, notificationData: [data])
            subscription.sequenceNumber = subscription.sequenceNumber == UInt32.max ? 1 : subscription.sequenceNumber + 1
            subscription.retransmit.append(message)
            if subscription.retransmit.count > 32 { subscription.retransmit.removeFirst() }
        }
        subscription.late = more
        subscription.keepAliveCounter = 0
        subscription.lifetimeCounter = 0
        subscription.firstMessageSent = true
        var response = PublishResponse(subscriptionId: subscription.id, availableSequenceNumbers: subscription.retransmit.map(\.sequenceNumber),
                                       moreNotifications: more, notificationMessage: message, results: entry.results)
        response.responseHeader.requestHandle = entry.requestHandle
        respond(response, requestId: entry.requestId, connection)
        return true
    }

    func sample(_ item: MonitoredItem, now: UInt64, timestamps: TimestampsToReturn) {
        item.nextSampleNs = now + item.samplingNs
        guard item.mode != .disabled else { return }
        let (current, version): (DataValue, UInt64) = lock.withLock {
            // The version without copying the node out.
            let version = space.nodes.index(forKey: item.nodeId).map { space.nodes.values[$0].version } ?? 0
            if item.attributeId == AttributeId.value.rawValue, version == item.lastVersion, item.nodeId != WellKnown.serverStatusCurrentTime {
                return (DataValue(), version)
            }
            return (space.read(ReadValueId(nodeId: item.nodeId, attributeId: AttributeId(rawValue: item.attributeId) ?? .value)), version)
        }
        if version == item.lastVersion && item.lastValue != nil && item.nodeId != WellKnown.serverStatusCurrentTime { return }
        item.lastVersion = version
        if let last = item.lastValue {
            let statusChanged = last.statusCode != current.statusCode
            var valueChanged = last.value != current.value
            if valueChanged, item.deadband > 0, let old = last.value?.doubleValue, let new = current.value?.doubleValue {
                valueChanged = abs(new - old) > item.deadband
            }
            let timestampChanged = last.sourceTimestamp != current.sourceTimestamp
            let changed = statusChanged || (item.trigger >= 1 && valueChanged) || (item.trigger == 2 && timestampChanged)
            guard changed else { return }
        }
        item.lastValue = current
        guard item.mode == .reporting else { return }
        var value = current
        switch timestamps {
        case .source: value.serverTimestamp = nil
        case .server: value.sourceTimestamp = nil
        case .neither: value.sourceTimestamp = nil; value.serverTimestamp = nil
        default: break
        }
        if item.queue.count >= item.queueSize {
            if item.discardOldest { item.queue.removeFirst() } else { item.queue.removeLast() }
        }
        item.queue.append(value)
    }

    func runTimers(_ now: UInt64) {
        for session in Array(sessions.values) {
            if now > session.lastActivityNs + session.timeoutNs && session.publishQueue.isEmpty {
                sessions[session.token] = nil
                continue
            }
            // Publish requests that timed out get BadTimeout.
            if session.publishQueue.contains(where: { $0.deadlineNs <= now }) {
                let expired = session.publishQueue.filter { $0.deadlineNs <= now }
                session.publishQueue.removeAll { $0.deadlineNs <= now }
                for entry in expired {
                    if let target = connections[entry.fd] { fault(.badTimeout, handle: entry.requestHandle, requestId: entry.requestId, target) }
                }
            }
            if !session.publishQueue.isEmpty { session.lastActivityNs = now }
            for subscription in Array(session.subscriptions.values) {
                for item in subscription.items.values where item.nextSampleNs <= now {
                    sample(item, now: now, timestamps: subscription.timestamps)
                }
                guard subscription.nextPublishNs <= now else { continue }
                subscription.nextPublishNs = max(subscription.nextPublishNs + subscription.intervalNs, now)
                // Items sampled no faster than the subscription publishes are sampled again right
                // before each publish, so a change waits at most one publishing interval, not two.
                for item in subscription.items.values where item.samplingNs >= subscription.intervalNs && item.nextSampleNs > now {
                    sample(item, now: now, timestamps: subscription.timestamps)
                }
                if subscription.publishingEnabled && subscription.hasNotifications {
                    if !publish(subscription, session, now: now) { subscription.lifetimeCounter += 1 }
                } else {
                    subscription.keepAliveCounter += 1
                    if subscription.keepAliveCounter >= subscription.maxKeepAlive || !subscription.firstMessageSent {
                        if !publish(subscription, session, now: now) { subscription.lifetimeCounter += 1 }
                    }
                }
                if subscription.lifetimeCounter > subscription.lifetimeCount {
                    session.subscriptions[subscription.id] = nil
                }
            }
        }
        for connection in Array(connections.values) {
            handle(connection.channel.tick(nowNs: now), connection)
        }
    }
}
