// Package testredis starts a real redis-server for tests: on a free loopback
// port, in the test's temporary directory, with an append-only file so that a
// killed and restarted server keeps what it acknowledged.
//
// Set RELAY_TEST_REDIS_URL to run the tests against an existing server
// instead; tests that need to kill or restart the server are skipped then.
// When redis-server is not on PATH, tests are skipped, unless CI=true, where
// a missing server fails the test.
//
// StartCluster starts a Redis Cluster the same way: three masters joined by
// `redis-cli --cluster create` (so redis-cli must be on PATH too), with one
// replica each when a test needs a failover. It always starts its own
// servers.
//
// It is for tests only and must not know Relay's keys or scripts: it starts
// servers and hands out their URLs.
package testredis
