package znode

import (
	"math"
	"testing"
)

func TestModeOf(t *testing.T) {
	cases := []struct {
		owner int64
		mode  Mode
		ttl   int64
	}{
		{0, ModePersistent, 0},
		{math.MinInt64, ModeContainer, 0},
		{-72057594037927936 | 3600000, ModeTTL, 3600000}, // 0xFF00000000000000 | 1h
		{0x0100000012345678, ModeEphemeral, 0},           // a session id
	}
	for _, c := range cases {
		m, ttl := ModeOf(c.owner)
		if m != c.mode || ttl != c.ttl {
			t.Errorf("ModeOf(%#x) = %s, %d; want %s, %d", uint64(c.owner), m, ttl, c.mode, c.ttl)
		}
	}
}

func TestValidatePath(t *testing.T) {
	good := []string{"/", "/a", "/admin/policies/tënänt-日本", "/a/b.c/..d", "/ledgers/00/0000/L0001"}
	for _, p := range good {
		if err := ValidatePath(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	// As ZooKeeper's PathUtils.validatePath: U+001F is the last control character refused,
	// and a character outside the BMP is a surrogate pair to Java, refused too.
	good = append(good, "/a\u0020b", "/\ud7ff", "/\uf900")
	for _, p := range good[len(good)-3:] {
		if err := ValidatePath(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	bad := []string{"", "a", "/a/", "//a", "/a//b", "/a/../b", "/./a", "/..", "/a\x00b", "/a\x01", "/a\x1f", "/\u0085", "/\ud7ff\ue000", "/a\uffff", "/emoji-\U0001F600", "/\U00010000"}
	for _, p := range bad {
		if err := ValidatePath(p); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
}

func TestParentJoinUnder(t *testing.T) {
	if Parent("/a") != "/" || Parent("/a/b/c") != "/a/b" || Join("/", "a") != "/a" || Join("/a", "b") != "/a/b" {
		t.Fatal("Parent/Join")
	}
	if !Under("/ledgers", "/ledgers") || !Under("/ledgers/x", "/ledgers") || Under("/ledgersx", "/ledgers") || !Under("/x", "/") {
		t.Fatal("Under")
	}
}
