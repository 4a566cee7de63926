package main

import (
	"flag"
	"slices"
	"strings"

	"github.com/replink/replink/mirror"
)

// flagConfig builds a one-link configuration from command-line flags named
// like the settings of a link in the file, checked by the same rules.
type flagConfig struct {
	fs    *flag.FlagSet
	raw   rawLink
	cfg   config
	level string
}

func newFlagConfig(fs *flag.FlagSet) *flagConfig {
	f := &flagConfig{fs: fs, raw: rawLink{"": {}}}
	for _, st := range linkSettings {
		k := st.key
		switch k {
		case "url": // given again, another provider of the same directory
			fs.Func(k, st.help(), func(v string) error {
				r := f.raw[k]
				if r.text != "" {
					r.list, r.text = append(r.list, r.text), ""
				}
				if len(r.list) > 0 {
					r.list = append(r.list, v)
				} else {
					r.text = v
				}
				f.raw[k] = r
				return nil
			})
		case "start-tls", "sasl-external", "allow-cleartext-password", "dirsync-object-security":
			fs.BoolFunc(k, st.help(), func(v string) error { f.raw[k] = rawValue{text: v}; return nil })
		default:
			fs.Func(k, st.help(), func(v string) error { f.raw[k] = rawValue{text: v}; return nil })
		}
	}
	return f
}

// used reports whether any link flag was given.
func (f *flagConfig) used() bool { return len(f.raw) > 1 }

// config validates the flags as one link.
// top holds the settings besides the link's, from their own flags.
func (f *flagConfig) config(top config) (*config, error) {
	s := &source{file: "command line", flags: true}
	if _, ok := f.raw["name"]; !ok {
		f.raw["name"] = rawValue{text: "default"}
	}
	cfg := &top
	spec := s.link("link", f.raw)
	if spec != nil {
		cfg.Links = []mirror.LinkConfig{*spec}
	}
	s.common(cfg)
	if len(s.errs) > 0 {
		return nil, joinFlagErrors(s.errs)
	}
	cfg.Warnings = s.warnings
	return cfg, nil
}

// joinFlagErrors renames "link.url" to "--url" so the message names the flag.
func joinFlagErrors(errs []error) error {
	out := slices.Clone(errs)
	for i, e := range out {
		if fe, ok := e.(*fieldError); ok {
			name := fe.Field
			if j := strings.LastIndexByte(name, '.'); j >= 0 {
				name = name[j+1:]
			}
			if slices.Contains(linkFields, name) {
				out[i] = &fieldError{Where: fe.Where, Field: "--" + name, Msg: fe.Msg}
			}
		}
	}
	return joinErrors(out)
}
