package replink_test

import (
	"errors"
	"fmt"

	"github.com/replink/replink"
)

// The table answers what a link does next; a pair it lacks is an error,
// never a guess.
func ExampleLookup() {
	t, err := replink.Lookup(replink.Persisting, replink.KeepaliveMiss, replink.RefreshAndPersist)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s -> %s on %s (case %d)\n", t.From, t.To, t.Event, t.Case)

	_, err = replink.Lookup(replink.Stopped, replink.RefreshDone, replink.RefreshAndPersist)
	fmt.Println(errors.Is(err, replink.ErrNoTransition))
	// Output:
	// Persisting -> Polling on keepalive-miss (case 5)
	// true
}

// Names from configuration files and scenario scripts parse with a clear
// error when they are wrong.
func ExampleParseEvent() {
	ev, err := replink.ParseEvent("disconnect-notice")
	fmt.Println(ev, err)
	_, err = replink.ParseEvent("disconnected")
	fmt.Println(err)
	// Output:
	// disconnect-notice <nil>
	// replink: unknown event "disconnected" (want one of start, stop, shutdown, reconfigure, connected, connect-failed, connect-refused, retries-exhausted, refresh-done, refresh-required, disconnect-notice, connection-closed, inactivity-timeout, keepalive-miss, exception, retry-timer, deletions-held)
}
