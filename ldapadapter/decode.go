package ldapadapter

import (
	"errors"
	"unsafe"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
)

// The sync search's responses are decoded here, once, straight from the
// frame into what the handler receives. go-ldap decoded each message into a
// packet tree and then into its own types; with the tap's own envelope
// parse, every byte of a refresh was decoded twice.

// OIDs of RFC 4533's controls and intermediate response.
const (
	oidSyncState = "1.3.6.1.4.1.4203.1.9.1.2"
	oidSyncDone  = "1.3.6.1.4.1.4203.1.9.1.3"
	oidSyncInfo  = "1.3.6.1.4.1.4203.1.9.1.4"
)

// syncMessage is one response to the sync search.
type syncMessage struct {
	op    int
	entry *ldap.Entry            // SearchResultEntry
	state *ldap.ControlSyncState // its Sync State control
	info  *ldap.ControlSyncInfo  // IntermediateResponse carrying Sync Info
	done  *ldap.ControlSyncDone  // SearchResultDone's Sync Done control
	err   error                  // SearchResultDone with a failure: an *ldap.Error
}

// decodeSyncMessage decodes one frame read by readFrame. The entry's
// strings and byte values share the frame's memory, which the tap
// allocated for this message alone and never writes again: that is the
// entry's one buffer.
func decodeSyncMessage(frame []byte) (syncMessage, error) {
	var m syncMessage
	top := berReader{b: frame}
	msg, err := top.expect(classUniversal, tagSequence, "message")
	if err != nil {
		return m, err
	}
	r := msg.children()
	if _, err := r.expect(classUniversal, tagInteger, "message ID"); err != nil {
		return m, err
	}
	op, err := r.next()
	if err != nil {
		return m, err
	}
	if op.class != classApplication {
		return m, berErrorf("protocol op is not APPLICATION class")
	}
	m.op = op.tag
	var controls tlv
	if r.more() {
		if controls, err = r.expect(classContext, 0, "controls"); err != nil {
			return m, err
		}
	}
	switch op.tag {
	case opSearchEntry:
		// The entry and its sync state live and die together: one
		// allocation holds both.
		both := new(entryWithState)
		if err = decodeEntry(&both.entry, op); err != nil {
			return m, err
		}
		m.entry = &both.entry
		var found bool
		if found, err = syncStateControl(&both.state, controls); found {
			m.state = &both.state
		}
	case opIntermediate:
		m.info, err = syncInfo(op)
	case opSearchDone:
		m.err, err = ldapResult(op)
		if err == nil {
			m.done, err = syncDoneControl(controls)
		}
	case opSearchReference: // a referral: nothing to replicate
	default:
		err = berErrorf("unexpected protocol op %d in the sync search", op.tag)
	}
	return m, err
}

// str is b as a string without a copy: b is part of a frame nobody writes.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// entryWithState is a SearchResultEntry with its Sync State control.
type entryWithState struct {
	entry ldap.Entry
	state ldap.ControlSyncState
}

// decodeEntry fills e with a fixed number of allocations whatever its
// size: the attributes and their values are carved out of one array each,
// after a first pass counts them.
func decodeEntry(e *ldap.Entry, op tlv) error {
	r := op.children()
	dn, err := r.expect(classUniversal, tagOctetString, "entry DN")
	if err != nil {
		return err
	}
	list, err := r.expect(classUniversal, tagSequence, "entry attributes")
	if err != nil {
		return err
	}
	nAttrs, nVals := 0, 0
	for a := list.children(); a.more(); {
		attr, err := a.expect(classUniversal, tagSequence, "attribute")
		if err != nil {
			return err
		}
		ar := attr.children()
		if _, err := ar.expect(classUniversal, tagOctetString, "attribute type"); err != nil {
			return err
		}
		vals, err := ar.expect(classUniversal, tagSet, "attribute values")
		if err != nil {
			return err
		}
		for v := vals.children(); v.more(); nVals++ {
			if _, err := v.expect(classUniversal, tagOctetString, "attribute value"); err != nil {
				return err
			}
		}
		nAttrs++
	}
	e.DN = str(dn.content)
	if nAttrs == 0 {
		return nil
	}
	attrs := make([]ldap.EntryAttribute, nAttrs)
	e.Attributes = make([]*ldap.EntryAttribute, nAttrs)
	values := make([]string, nVals)
	bytesValues := make([][]byte, nVals)
	i := 0
	for a := list.children(); a.more(); {
		attr, _ := a.next() // checked by the first pass
		ar := attr.children()
		name, _ := ar.next()
		vals, _ := ar.next()
		start := i
		for v := vals.children(); v.more(); i++ {
			val, _ := v.next()
			values[i], bytesValues[i] = str(val.content), val.content
		}
		k := len(e.Attributes) - nAttrs
		attrs[k] = ldap.EntryAttribute{Name: str(name.content), Values: values[start:i:i], ByteValues: bytesValues[start:i:i]}
		e.Attributes[k] = &attrs[k]
		nAttrs--
	}
	return nil
}

// control finds the control with oid among controls and returns its value.
func control(controls tlv, oid string) (value []byte, found bool, err error) {
	for r := controls.children(); r.more(); {
		c, err := r.expect(classUniversal, tagSequence, "control")
		if err != nil {
			return nil, false, err
		}
		cr := c.children()
		typ, err := cr.expect(classUniversal, tagOctetString, "control type")
		if err != nil {
			return nil, false, err
		}
		if str(typ.content) != oid {
			continue
		}
		for cr.more() {
			f, err := cr.next()
			if err != nil {
				return nil, false, err
			}
			if f.is(classUniversal, tagOctetString) {
				return f.content, true, nil
			}
		}
		return nil, true, nil
	}
	return nil, false, nil
}

// syncStateControl decodes syncStateValue ::= SEQUENCE { state
// ENUMERATED, entryUUID OCTET STRING (16), cookie OCTET STRING OPTIONAL }
// into c, or reports that the entry carries none.
func syncStateControl(c *ldap.ControlSyncState, controls tlv) (found bool, err error) {
	v, found, err := control(controls, oidSyncState)
	if err != nil || !found {
		return false, err
	}
	seq, err := (&berReader{b: v}).expect(classUniversal, tagSequence, "sync state")
	if err != nil {
		return false, err
	}
	r := seq.children()
	st, err := r.expect(classUniversal, tagEnumerated, "sync state")
	if err != nil {
		return false, err
	}
	state, err := st.integer()
	if err != nil {
		return false, err
	}
	id, err := r.expect(classUniversal, tagOctetString, "entryUUID")
	if err != nil {
		return false, err
	}
	u, err := uuid.FromBytes(id.content)
	if err != nil {
		return false, berErrorf("entryUUID of %d bytes", len(id.content))
	}
	*c = ldap.ControlSyncState{State: ldap.ControlSyncStateState(state), EntryUUID: u}
	if r.more() {
		ck, err := r.expect(classUniversal, tagOctetString, "sync state cookie")
		if err != nil {
			return false, err
		}
		c.Cookie = ck.content
	}
	return true, nil
}

// syncDoneControl decodes syncDoneValue ::= SEQUENCE { cookie OPTIONAL,
// refreshDeletes BOOLEAN DEFAULT FALSE }, or nil if absent.
func syncDoneControl(controls tlv) (*ldap.ControlSyncDone, error) {
	v, found, err := control(controls, oidSyncDone)
	if err != nil || !found {
		return nil, err
	}
	d := &ldap.ControlSyncDone{}
	if len(v) == 0 {
		return d, nil
	}
	seq, err := (&berReader{b: v}).expect(classUniversal, tagSequence, "sync done")
	if err != nil {
		return nil, err
	}
	d.Cookie, d.RefreshDeletes, err = cookieAndFlag(seq, false)
	return d, err
}

// cookieAndFlag reads SEQUENCE { cookie OCTET STRING OPTIONAL, flag
// BOOLEAN DEFAULT def }.
func cookieAndFlag(seq tlv, def bool) (cookie []byte, flag bool, err error) {
	flag = def
	for r := seq.children(); r.more(); {
		f, err := r.next()
		if err != nil {
			return nil, false, err
		}
		switch {
		case f.is(classUniversal, tagOctetString):
			cookie = f.content
		case f.is(classUniversal, tagBoolean):
			if flag, err = f.boolean(); err != nil {
				return nil, false, err
			}
		default:
			return nil, false, berErrorf("unexpected tag %d in a sync value", f.tag)
		}
	}
	return cookie, flag, nil
}

// syncInfo decodes an IntermediateResponse { responseName [0], responseValue
// [1] } whose name is Sync Info; another intermediate response is nil.
func syncInfo(op tlv) (*ldap.ControlSyncInfo, error) {
	var name string
	var value []byte
	for r := op.children(); r.more(); {
		f, err := r.next()
		if err != nil {
			return nil, err
		}
		switch {
		case f.is(classContext, 0):
			name = str(f.content)
		case f.is(classContext, 1):
			value = f.content
		}
	}
	if name != oidSyncInfo {
		return nil, nil
	}
	choice, err := (&berReader{b: value}).next()
	if err != nil {
		return nil, err
	}
	if choice.class != classContext {
		return nil, berErrorf("sync info: tag class 0x%02x", choice.class)
	}
	info := &ldap.ControlSyncInfo{}
	switch choice.tag {
	case 0: // newcookie [0] syncCookie
		info.Value = ldap.SyncInfoNewcookie
		info.NewCookie = &ldap.ControlSyncInfoNewCookie{Cookie: choice.content}
	case 1, 2: // refreshDelete, refreshPresent: SEQUENCE { cookie OPTIONAL, refreshDone BOOLEAN DEFAULT TRUE }
		cookie, done, err := cookieAndFlag(choice, true)
		if err != nil {
			return nil, err
		}
		if choice.tag == 1 {
			info.Value = ldap.SyncInfoRefreshDelete
			info.RefreshDelete = &ldap.ControlSyncInfoRefreshDelete{Cookie: cookie, RefreshDone: done}
		} else {
			info.Value = ldap.SyncInfoRefreshPresent
			info.RefreshPresent = &ldap.ControlSyncInfoRefreshPresent{Cookie: cookie, RefreshDone: done}
		}
	case 3: // syncIdSet: SEQUENCE { cookie OPTIONAL, refreshDeletes BOOLEAN DEFAULT FALSE, syncUUIDs SET OF OCTET STRING }
		set := &ldap.ControlSyncInfoSyncIdSet{}
		for r := choice.children(); r.more(); {
			f, err := r.next()
			if err != nil {
				return nil, err
			}
			switch {
			case f.is(classUniversal, tagOctetString):
				set.Cookie = f.content
			case f.is(classUniversal, tagBoolean):
				if set.RefreshDeletes, err = f.boolean(); err != nil {
					return nil, err
				}
			case f.is(classUniversal, tagSet):
				for ur := f.children(); ur.more(); {
					ut, err := ur.expect(classUniversal, tagOctetString, "syncUUID")
					if err != nil {
						return nil, err
					}
					u, err := uuid.FromBytes(ut.content)
					if err != nil {
						return nil, berErrorf("syncUUID of %d bytes", len(ut.content))
					}
					set.SyncUUIDs = append(set.SyncUUIDs, u)
				}
			default:
				return nil, berErrorf("unexpected tag %d in syncIdSet", f.tag)
			}
		}
		info.Value = ldap.SyncInfoSyncIdSet
		info.SyncIdSet = set
	default:
		return nil, berErrorf("sync info choice %d", choice.tag)
	}
	return info, nil
}

// ldapResult decodes an LDAPResult; a failure is returned as the
// *ldap.Error go-ldap would have made, so callers match it the same way.
func ldapResult(op tlv) (error, error) {
	r := op.children()
	codeT, err := r.expect(classUniversal, tagEnumerated, "result code")
	if err != nil {
		return nil, err
	}
	code, err := codeT.integer()
	if err != nil {
		return nil, err
	}
	matched, err := r.expect(classUniversal, tagOctetString, "matched DN")
	if err != nil {
		return nil, err
	}
	diag, err := r.expect(classUniversal, tagOctetString, "diagnostic message")
	if err != nil {
		return nil, err
	}
	if code == 0 {
		return nil, nil
	}
	if code < 0 || code > 0xffff {
		return nil, berErrorf("result code %d", code)
	}
	return &ldap.Error{ResultCode: uint16(code), MatchedDN: string(matched.content), Err: errors.New(string(diag.content))}, nil
}
