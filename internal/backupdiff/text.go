package backupdiff

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/wI2L/jsondiff"
)

// shown is how many names of each list the text prints; the JSON has up to MaxListed.
const shown = 20

// WriteText writes the result for people.
func (r Result) WriteText(w io.Writer) error {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	for _, s := range []struct {
		label string
		side  Side
	}{{"from", r.From}, {"to  ", r.To}} {
		m := s.side.Manifest
		p("%s  %s (%s, %d znodes, zxid %s)\n", s.label, s.side.URL, m.StartTime.UTC().Format("2006-01-02T15:04:05Z"), m.Znodes, m.Local().Consistency.ZxidEnd)
	}
	p("\n")
	for _, l := range []struct {
		label string
		ar    AddedRemoved
	}{{"tenants", r.Tenants}, {"namespaces", r.Namespaces}, {"topics", r.Topics}, {"partitioned topics", r.PartitionedTopics}} {
		p("%s: %d added, %d removed\n", l.label, l.ar.Added.Count, l.ar.Removed.Count)
		names(w, "+", l.ar.Added)
		names(w, "-", l.ar.Removed)
	}

	p("\npolicies changed: %d\n", r.Policies.Count)
	for _, c := range r.Policies.Changes {
		label := c.Kind
		if c.Name != "" {
			label += " " + c.Name
		}
		p("  %s (%s)\n", rolePath(c.Role, c.Path), label)
		switch {
		case c.NotJSON:
			p("    not JSON on one side: no patch\n")
		case c.PatchOmitted:
			p("    (patch left out: the listed patches reached %d bytes)\n", MaxPatchBytes)
		case len(c.Patch) == 0:
			p("    same JSON, other bytes\n")
		}
		for _, op := range c.Patch {
			if line := opLine(op); line != "" {
				p("    %s\n", line)
			}
		}
	}
	if n := r.Policies.Count - int64(len(r.Policies.Changes)); n > 0 {
		p("  and %d more\n", n)
	}

	z := r.Znodes
	p("\nznodes: %d -> %d: %d added, %d removed, %d changed (%d data, %d ACL or mode), %d unchanged\n",
		r.From.Manifest.Znodes, r.To.Manifest.Znodes, z.Added, z.Removed, z.Changed, z.DataChanged, z.ACLChanged, z.Unchanged)
	if len(r.BySubtree) > 0 {
		width := len("subtree")
		for _, s := range r.BySubtree {
			width = max(width, len(rolePath(s.Role, s.Path))+2)
		}
		p("  %-*s %7s %7s %7s %7s %9s\n", width, "subtree", "added", "removed", "changed", "data", "ACL/mode")
		for _, s := range r.BySubtree {
			path := rolePath(s.Role, s.Path)
			if strings.Count(s.Path, "/") > 1 {
				path = "  " + path
			}
			p("  %-*s %7d %7d %7d %7d %9d\n", width, path, s.Added, s.Removed, s.Changed, s.DataChanged, s.ACLChanged)
		}
	}

	ml := r.ManagedLedgers
	p("\nmanaged ledgers whose offloaded ledgers changed: %d (%d offloaded ledgers gained, %d lost)\n", ml.Count, ml.Gained, ml.Lost)
	for i, c := range ml.Changes {
		if i == shown {
			p("  and %d more\n", ml.Count-int64(shown))
			break
		}
		p("  %s  +%d %s  -%d %s\n", c.Topic, c.GainedCount, ids(c.Gained, c.GainedCount), c.LostCount, ids(c.Lost, c.LostCount))
	}
	if ml.Undecodable.Count > 0 {
		p("managed ledgers that do not decode: %d\n", ml.Undecodable.Count)
		names(w, "!", ml.Undecodable)
	}
	if r.Truncated {
		p("\n(some lists stopped at their cap; counts are exact; --json lists up to %d of each)\n", MaxListed)
	}
	return nil
}

func names(w io.Writer, mark string, n Names) {
	for i, name := range n.First {
		if i == shown {
			fmt.Fprintf(w, "  and %d more\n", n.Count-int64(shown))
			return
		}
		fmt.Fprintf(w, "  %s %s\n", mark, name)
	}
}

func ids(list []int64, count int64) string {
	s := make([]string, len(list))
	for i, id := range list {
		s[i] = fmt.Sprint(id)
	}
	out := "[" + strings.Join(s, " ")
	if count > int64(len(list)) {
		out += " ..."
	}
	return out + "]"
}

// opLine renders one patch operation; the test operations that carry old values are shown
// with the operation they precede.
func opLine(op jsondiff.Operation) string {
	val := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			return "?"
		}
		if len(b) > 200 {
			return string(b[:200]) + "..."
		}
		return string(b)
	}
	switch op.Type {
	case jsondiff.OperationTest:
		return ""
	case jsondiff.OperationReplace:
		return fmt.Sprintf("~ %s: %s -> %s", op.Path, val(op.OldValue), val(op.Value))
	case jsondiff.OperationRemove:
		return fmt.Sprintf("- %s: %s", op.Path, val(op.OldValue))
	case jsondiff.OperationAdd:
		return fmt.Sprintf("+ %s: %s", op.Path, val(op.Value))
	}
	return fmt.Sprintf("%s %s", op.Type, op.Path)
}

// rolePath is a path as the text names it: a store other than the local one prefixes its
// role ("configuration:/admin/policies/t").
func rolePath(role, path string) string {
	if role == "" {
		return path
	}
	return role + ":" + path
}
