package conformance

import (
	"time"

	"github.com/replink/replink/fsm"
)

// Target is what a script runs against: a provider with its network, and the
// consumer-side store that survives a consumer restart. sim.Target is the
// simulated one; internal/realtarget runs a real slapd or 389-ds. A Target
// with a Name() string method (one of Targets) runs the steps qualified
// with its name, and skips those qualified with others only.
type Target interface {
	// Adapter returns the adapter a new consumer process uses.
	Adapter() fsm.Adapter
	// Fault injects the named fault; arg is its optional duration.
	Fault(name string, arg time.Duration) error
	// Write makes n changes on the provider; Delete removes n entries.
	Write(n int) error
	Delete(n int) error
	// InSync reports how the consumer's copy differs from the provider's.
	InSync() error
	// Crash makes the consumer lose what it had not flushed, as a killed
	// process would.
	Crash()
}
