package replink

// The diagrams and the transition table in docs/ are generated from Table;
// diagram's tests fail when the committed files are stale.
//go:generate go run ./cmd/fsmviz -o docs/states.dot
//go:generate go run ./cmd/fsmviz -format mermaid -o docs/states.mmd
//go:generate go run ./cmd/fsmviz -format markdown -o docs/transitions.md
//go:generate go run ./cmd/fsmviz -o docs/states.svg
