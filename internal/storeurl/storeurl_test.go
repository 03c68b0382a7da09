package storeurl

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want URL
		str  string
	}{
		{"zk1:2181", URL{Kind: ZooKeeper, Servers: []string{"zk1:2181"}}, "zk:zk1:2181"},
		{"zk1:2181, zk2:2181/pulsar", URL{Kind: ZooKeeper, Servers: []string{"zk1:2181", "zk2:2181"}, Root: "/pulsar"}, "zk:zk1:2181,zk2:2181/pulsar"},
		{"zk:zk1:2181/a/b/", URL{Kind: ZooKeeper, Servers: []string{"zk1:2181"}, Root: "/a/b"}, "zk:zk1:2181/a/b"},
		{"metadata-store:zk:127.0.0.1:2181/", URL{Kind: ZooKeeper, Servers: []string{"127.0.0.1:2181"}}, "zk:127.0.0.1:2181"},
		{"[::1]:2181/x", URL{Kind: ZooKeeper, Servers: []string{"[::1]:2181"}, Root: "/x"}, "zk:[::1]:2181/x"},
		{"etcd:http://e1:2379,https://e2:2379", URL{Kind: Etcd, Servers: []string{"http://e1:2379", "https://e2:2379"}}, "etcd:http://e1:2379,https://e2:2379"},
		{"etcd:e1:2379", URL{Kind: Etcd, Servers: []string{"http://e1:2379"}}, "etcd:http://e1:2379"},
	} {
		got, err := Parse(tc.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.in, err)
		}
		if !reflect.DeepEqual(got, tc.want) || got.String() != tc.str {
			t.Errorf("Parse(%q) = %+v (%s), want %+v (%s)", tc.in, got, got, tc.want, tc.str)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for in, want := range map[string]string{
		"":                           "at least one host:port",
		"consul://c1:8500":           `unknown scheme "consul"`,
		"rocksdb:/data":              `unknown scheme "rocksdb"`,
		"zk1":                        "must be host:port",
		"zk1:99999":                  "port must be 1-65535",
		"zk1:2181/a//b":              "not a valid path",
		"zk1:2181/a/../b":            "not a valid path",
		"etcd:ftp://e1:2379":         "must be http://host:port",
		"etcd:http://u:p@e1:2379":    "credentials do not belong",
		"etcd:http://e1:2379/pulsar": "no chroot",
		"etcd:":                      "at least one etcd endpoint",
	} {
		_, err := Parse(in)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) = %v, want one line containing %q", in, err, want)
		}
	}
	if _, err := Parse("etcd:http://u:secret@e1:2379"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("an error repeats the URL's password: %v", err)
	}
}

func TestSame(t *testing.T) {
	a, _ := Parse("zk1:2181,zk2:2181/p")
	b, _ := Parse("zk:ZK2:2181,zk1:2181/p")
	c, _ := Parse("zk1:2181,zk2:2181/q")
	d, _ := Parse("zk1:2181/p")
	if !a.Same(b) || a.Same(c) || a.Same(d) {
		t.Errorf("Same: a~b %v a~c %v a~d %v", a.Same(b), a.Same(c), a.Same(d))
	}
}
