package replink

// Case is one of the six situations of the design mail that a transition
// serves. CaseNone marks ordinary operation (connecting, refreshing).
type Case uint8

// The six cases of the design mail.
const (
	CaseNone             Case = iota
	CaseShutdown              // 1: the consumer's own server shuts down
	CaseAdmin                 // 2: an admin stops, starts or reconfigures a link
	CaseCleanDisconnect       // 3: the provider disconnects cleanly
	CaseInactivity            // 4: the connection is cut for inactivity
	CaseBrutalDisconnect      // 5: the provider vanishes without a word
	CaseException             // 6: an exception during replication
)

var caseTitles = [...]string{
	"normal operation",
	"consumer shutdown",
	"admin stop/start/reconfigure",
	"provider disconnected cleanly",
	"connection cut for inactivity",
	"provider vanished brutally",
	"exception during replication",
}

// Title is a short human description of the case.
func (c Case) Title() string {
	if int(c) < len(caseTitles) {
		return caseTitles[c]
	}
	return "unknown case"
}

func (c Case) String() string {
	if c == CaseNone {
		return "-"
	}
	return "case " + itoa(int(c))
}

// MarshalText writes the case as it is printed, so logs and JSON show it.
func (c Case) MarshalText() ([]byte, error) { return []byte(c.String()), nil }
