import RelocatorCore

extension TestEnvironment {
    /// The shared Redis Cluster that `Scripts/services start redis-cluster` started. For tests that
    /// do not kill or reshard nodes; those start their own `RedisClusterServer`.
    public static func redisClusterURL() throws -> RedisURL {
        try RedisURL(parsing: value("RELOCATOR_TEST_REDIS_CLUSTER_URL"), setting: "RELOCATOR_TEST_REDIS_CLUSTER_URL")
    }

    /// The shared sentinel setup that `Scripts/services start redis-sentinel` started. For tests that
    /// do not fail the master over; those start their own `RedisSentinelServer`.
    public static func redisSentinelURL() throws -> RedisURL {
        try RedisURL(parsing: value("RELOCATOR_TEST_REDIS_SENTINEL_URL"), setting: "RELOCATOR_TEST_REDIS_SENTINEL_URL")
    }
}
