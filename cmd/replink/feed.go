package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"sync"
	"time"

	"github.com/replink/replink/ldapadapter"
)

// feed writes every applied change as one JSON line, for systems that are
// not directories: replink as a change-data-capture source. Lines are
// written before the store applies the change and made durable before the
// cookie that covers it is committed, so after a crash a change may come
// twice in the feed, never not at all.
type feed struct {
	mu   sync.Mutex
	w    *bufio.Writer
	f    *os.File // nil for stdout: nothing to fsync
	out  io.Writer
	line feedLine
}

// feedLine is the JSON form of one change.
type feedLine struct {
	Time       time.Time           `json:"time"`
	Link       string              `json:"link"`
	Op         string              `json:"op"`
	DN         string              `json:"dn,omitempty"`
	UUID       string              `json:"uuid"`
	Attributes map[string][]string `json:"attributes,omitempty"`
	// Cookie is the provider's stream position the copy had reached when
	// this change came: the last cookie committed before it.
	Cookie string `json:"cookie,omitempty"`
}

// openFeed opens path for appending ("-" is standard output).
func openFeed(path string, stdout io.Writer) (*feed, error) {
	if path == "-" {
		return &feed{w: bufio.NewWriter(stdout), out: stdout}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &feed{w: bufio.NewWriterSize(f, 64<<10), f: f, out: f}, nil
}

func (f *feed) write(link string, c ldapadapter.Change, position []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := &f.line
	*l = feedLine{Time: time.Now().UTC(), Link: link, Op: c.Op.String(), DN: c.DN, UUID: c.UUID.String(), Cookie: string(position)}
	if c.Entry != nil {
		l.Attributes = make(map[string][]string, len(c.Entry.Attributes))
		for _, a := range c.Entry.Attributes {
			l.Attributes[a.Name] = a.Values
		}
	}
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if _, err := f.w.Write(append(b, '\n')); err != nil {
		return err
	}
	if f.f == nil { // a pipe or a terminal: a reader waits for each line
		return f.w.Flush()
	}
	return nil
}

// sync flushes the feed and, for a file, fsyncs it.
func (f *feed) sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.w.Flush(); err != nil {
		return err
	}
	if f.f != nil {
		return f.f.Sync()
	}
	return nil
}

func (f *feed) close() error {
	err := f.sync()
	if f.f != nil {
		if cerr := f.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
