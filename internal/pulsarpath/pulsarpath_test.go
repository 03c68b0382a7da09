package pulsarpath

import "testing"

func TestPaths(t *testing.T) {
	l := NewLayout("")
	v1 := NewLayout("/ml/")
	for _, c := range []struct {
		layout                Layout
		path                  string
		managedLedger, cursor bool
		topic                 string
		owner                 Owner
	}{
		{l, "/managed-ledgers/t/ns/persistent/x", true, false, "persistent://t/ns/x", Owner{"t", "t/ns"}},
		{l, "/managed-ledgers/t/ns/persistent/x/sub", false, true, "", Owner{"t", "t/ns"}},
		{l, "/managed-ledgers/t/ns/persistent", false, false, "", Owner{"t", "t/ns"}},
		{l, "/managed-ledgers/t", false, false, "", Owner{"t", ""}},
		{l, "/managed-ledgers", false, false, "", Owner{}},
		{v1, "/ml/t/c/ns/persistent/x", true, false, "persistent://t/c/ns/x", Owner{"t", "t/c/ns"}},
		{v1, "/ml/t/c/ns/persistent/x/sub", false, true, "", Owner{"t", "t/c/ns"}},
		{v1, "/ml/t/ns/persistent/persistent/sub", false, true, "", Owner{"t", "t/ns"}},
		{l, "/admin/policies/t/ns", false, false, "", Owner{"t", "t/ns"}},
		{l, "/admin/partitioned-topics/t/ns/persistent/p", false, false, "", Owner{"t", "t/ns"}},
		{l, "/schemas/t/ns/x", false, false, "", Owner{"t", "t/ns"}},
		{l, "/namespace/t/ns/0x00000000_0xffffffff", false, false, "", Owner{"t", "t/ns"}},
		{l, "/loadbalance/bundle-data/t/ns/b", false, false, "", Owner{"t", "t/ns"}},
		{l, "/admin/clusters/c", false, false, "", Owner{}},
		{l, "/ledgers/00/0000/L0001", false, false, "", Owner{}},
	} {
		if got := c.layout.IsManagedLedger(c.path); got != c.managedLedger {
			t.Errorf("IsManagedLedger(%s) = %v", c.path, got)
		}
		if got := c.layout.IsCursor(c.path); got != c.cursor {
			t.Errorf("IsCursor(%s) = %v", c.path, got)
		}
		if c.topic != "" && c.layout.TopicName(c.path) != c.topic {
			t.Errorf("TopicName(%s) = %s", c.path, c.layout.TopicName(c.path))
		}
		if got := c.layout.OwnerOf(c.path); got != c.owner {
			t.Errorf("OwnerOf(%s) = %+v, want %+v", c.path, got, c.owner)
		}
	}
	for path, want := range map[string]string{"/admin/policies/t": "t", "/admin/policies/t/ns": "", "/admin/policies": ""} {
		if got, ok := IsTenant(path); got != want || ok != (want != "") {
			t.Errorf("IsTenant(%s) = %q %v", path, got, ok)
		}
	}
	for _, c := range []struct {
		path     string
		children int32
		want     string
	}{
		{"/admin/policies/t/ns", 0, "t/ns"},
		{"/admin/policies/t/c/ns", 0, "t/c/ns"},
		{"/admin/policies/t/c", 2, ""}, // a v1 cluster node: the parent of namespaces
		{"/admin/policies/t", 0, ""},
		{"/admin/policies/t/c/ns/x", 0, ""},
	} {
		if got, ok := IsNamespace(c.path, c.children); got != c.want || ok != (c.want != "") {
			t.Errorf("IsNamespace(%s, %d) = %q %v", c.path, c.children, got, ok)
		}
	}
	for path, want := range map[string]string{
		"/admin/partitioned-topics/t/ns/persistent/p":     "persistent://t/ns/p",
		"/admin/partitioned-topics/t/ns/non-persistent/p": "non-persistent://t/ns/p",
		"/admin/partitioned-topics/t/c/ns/persistent/p":   "persistent://t/c/ns/p",
		"/admin/partitioned-topics/t/ns/persistent":       "",
		"/admin/partitioned-topics/t/ns/other/p":          "",
	} {
		if got, ok := IsPartitionedTopic(path); got != want || ok != (want != "") {
			t.Errorf("IsPartitionedTopic(%s) = %q %v", path, got, ok)
		}
	}
	for path, want := range map[string]string{"/": "/", "/a": "/a", "/a/b/c": "/a"} {
		if got := TopLevel(path); got != want {
			t.Errorf("TopLevel(%s) = %s", path, got)
		}
	}
}
