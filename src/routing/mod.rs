//! Routing: token of a partition key, shard of a token, replicas of a token.
