// Package clock is the time source of everything in Relay that schedules:
// the stores (lease expiry, due times, retention), the delivery keeper and
// the circuit breaker. Production code is handed Real; tests hand a *Fake
// and move it with Advance instead of sleeping.
//
// It owns reading the time and arming timers, and nothing else: it must not
// know what is scheduled.
package clock
