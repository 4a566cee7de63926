package replink

// Mode is the RFC 4533 sync mode of a link.
type Mode uint8

const (
	// RefreshAndPersist keeps the search open and receives changes as they
	// happen (Persisting).
	RefreshAndPersist Mode = iota
	// RefreshOnly runs one refresh, disconnects, and polls again after the
	// refresh interval.
	RefreshOnly
)

func (m Mode) String() string {
	switch m {
	case RefreshAndPersist:
		return "refreshAndPersist"
	case RefreshOnly:
		return "refreshOnly"
	}
	return "Mode(" + itoa(int(m)) + ")"
}

// ParseMode accepts refreshAndPersist or refreshOnly.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "refreshAndPersist":
		return RefreshAndPersist, nil
	case "refreshOnly":
		return RefreshOnly, nil
	}
	return 0, &UnknownNameError{Kind: "mode", Name: s, Valid: []string{"refreshAndPersist", "refreshOnly"}}
}

// MarshalText writes the mode's name, so logs and JSON show it by name.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }
