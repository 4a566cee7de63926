package ldapadapter_test

import (
	"os"
	"testing"

	"github.com/replink/replink/internal/realtarget"
	"github.com/replink/replink/internal/sambatest"
)

// TestMain provisions one Samba domain for the binary, at the first test
// that starts a DC, and copies it for every DC (a fraction of a second
// against about 13 s); tests that need a DC of another domain ask for
// sambatest.WithFreshDomain.
func TestMain(m *testing.M) { os.Exit(sambatest.Main(m)) }

// TestScenariosAgainstSamba runs the conformance scenarios against a real
// Samba AD DC over a DirSync link (polling every realtarget.SambaPoll,
// woken by Samba's change notifications), with the same real faults:
// signals to samba, the fault proxy in front of the DC's LDAP port, its
// namespace vanishing. Where DirSync or Samba behaves otherwise the
// scenario says so on lines qualified [samba]; a fault with no DirSync
// meaning (provider-end-persist, refresh-required) skips its scenario.
func TestScenariosAgainstSamba(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time scenarios against Samba: not in -short")
	}
	sambatest.Require(t)
	runScenarios(t, realtarget.Samba, false)
}
