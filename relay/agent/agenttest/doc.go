// Package agenttest holds test helpers for the agent: an HTTP CONNECT proxy
// that tests can cut or freeze, to put a real proxy hop between an agent and
// the relay.
//
// It is for tests only and must not know the agent protocol: it forwards
// bytes and does not read them.
package agenttest
