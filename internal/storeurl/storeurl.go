// Package storeurl parses the metadata-store addresses Pulsar operators write: a plain
// ZooKeeper connect string ("zk1:2181,zk2:2181/pulsar"), Pulsar's metadata-store URLs
// ("zk:zk1:2181/pulsar", "metadata-store:zk:...") and etcd ("etcd:http://etcd1:2379,...").
//
// Pulsar's own parsing, for the next reader to check (apache/pulsar, pulsar-metadata):
// MetadataStoreFactoryImpl.findProvider picks the store by the URL's scheme prefix ("zk:",
// "etcd:"; a bare connect string is ZooKeeper) and removeIdentifierFromMetadataURL strips it
// ("zk:host:port" -> "host:port", "etcd:host:port" -> "host:port"). "metadata-store:" is
// the prefix PulsarClusterMetadataSetup.main puts before metadataStoreUrl to make
// BookKeeper's metadataServiceUri; operators copy either form. The ZooKeeper client takes
// everything from the first '/' of the connect string as the chroot
// (org.apache.zookeeper.client.ConnectStringParser's constructor; "/" alone is no chroot).
// The EtcdMetadataStore constructor strips "etcd:" and passes the rest to jetcd's
// Client.builder().endpoints; it has no chroot (http:// is assumed here for a bare
// host:port).
package storeurl

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Kind is the metadata store's implementation.
type Kind string

const (
	ZooKeeper Kind = "zookeeper"
	Etcd      Kind = "etcd"
)

// URL is a parsed store address. Servers are host:port for ZooKeeper and http(s)://host:port
// for etcd. Root is the chroot ("" for none): every path in a backup is relative to it.
type URL struct {
	Kind    Kind
	Servers []string
	Root    string
}

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("invalid metadata store URL")

// Parse reads one address. Errors are one line and quote the address (which carries no
// secret: credentials are configured apart, under auth).
func Parse(s string) (URL, error) {
	raw := redactUserinfo(strings.TrimSpace(s))
	rest := strings.TrimPrefix(raw, "metadata-store:")
	switch {
	case strings.HasPrefix(rest, "zk:"):
		return parseZK(raw, strings.TrimPrefix(rest, "zk:"))
	case strings.HasPrefix(rest, "etcd:"):
		return parseEtcd(raw, strings.TrimPrefix(rest, "etcd:"))
	}
	if i := strings.Index(rest, "://"); i > 0 {
		return URL{}, fmt.Errorf("%w %q: unknown scheme %q (want a host:port list, zk:, metadata-store:zk: or etcd:)", ErrInvalid, raw, rest[:i])
	}
	if scheme, _, ok := strings.Cut(rest, ":"); ok && !strings.ContainsAny(scheme, ".,/[]") && !isHostPortList(rest) {
		return URL{}, fmt.Errorf("%w %q: unknown scheme %q (want a host:port list, zk:, metadata-store:zk: or etcd:)", ErrInvalid, raw, scheme)
	}
	return parseZK(raw, rest)
}

// isHostPortList reports whether s starts like "host:port" with a numeric port, so that
// "localhost:2181" is a connect string and "foo:bar" an unknown scheme.
var userinfo = regexp.MustCompile(`//[^/@,]*@`)

// redactUserinfo hides credentials someone put into a URL, so no error repeats them.
func redactUserinfo(s string) string { return userinfo.ReplaceAllString(s, "//***@") }

func isHostPortList(s string) bool {
	first, _, _ := strings.Cut(s, ",")
	first, _, _ = strings.Cut(first, "/")
	_, port, err := net.SplitHostPort(first)
	if err != nil {
		return false
	}
	_, err = strconv.Atoi(port)
	return err == nil
}

func parseZK(raw, s string) (URL, error) {
	hosts, root := s, ""
	if i := strings.Index(s, "/"); i >= 0 {
		hosts, root = s[:i], s[i:]
	}
	u := URL{Kind: ZooKeeper}
	for _, h := range strings.Split(hosts, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if err := hostPort(h); err != nil {
			return URL{}, fmt.Errorf("%w %q: %v", ErrInvalid, raw, err)
		}
		u.Servers = append(u.Servers, h)
	}
	if len(u.Servers) == 0 {
		return URL{}, fmt.Errorf("%w %q: must list at least one host:port", ErrInvalid, raw)
	}
	root, err := cleanRoot(root)
	if err != nil {
		return URL{}, fmt.Errorf("%w %q: %v", ErrInvalid, raw, err)
	}
	u.Root = root
	return u, nil
}

func parseEtcd(raw, s string) (URL, error) {
	u := URL{Kind: Etcd}
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if !strings.Contains(e, "://") {
			e = "http://" + e
		}
		p, err := url.Parse(e)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return URL{}, fmt.Errorf("%w %q: etcd endpoint %q must be http://host:port or https://host:port", ErrInvalid, raw, e)
		}
		if p.User != nil {
			return URL{}, fmt.Errorf("%w %q: credentials do not belong in the URL; set auth", ErrInvalid, raw)
		}
		if p.Path != "" && p.Path != "/" || p.RawQuery != "" {
			return URL{}, fmt.Errorf("%w %q: etcd endpoint %q has a path or query; Pulsar's etcd store has no chroot", ErrInvalid, raw, e)
		}
		if err := hostPort(p.Host); err != nil {
			return URL{}, fmt.Errorf("%w %q: %v", ErrInvalid, raw, err)
		}
		u.Servers = append(u.Servers, p.Scheme+"://"+p.Host)
	}
	if len(u.Servers) == 0 {
		return URL{}, fmt.Errorf("%w %q: must list at least one etcd endpoint", ErrInvalid, raw)
	}
	return u, nil
}

func hostPort(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		return fmt.Errorf("%q must be host:port", v)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("%q: port must be 1-65535", v)
	}
	return nil
}

// cleanRoot checks a chroot: "" or "/" is none; otherwise an absolute path without empty,
// "." or ".." segments and without a trailing slash.
func cleanRoot(root string) (string, error) {
	if root == "" || root == "/" {
		return "", nil
	}
	root = strings.TrimSuffix(root, "/")
	for _, seg := range strings.Split(root[1:], "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "\x00") {
			return "", fmt.Errorf("chroot %q is not a valid path", root)
		}
	}
	return root, nil
}

// String is the canonical form, as a manifest records it: "zk:h1:2181,h2:2181/chroot" or
// "etcd:http://h1:2379,http://h2:2379". It never holds credentials.
func (u URL) String() string {
	switch u.Kind {
	case Etcd:
		return "etcd:" + strings.Join(u.Servers, ",")
	default:
		return "zk:" + strings.Join(u.Servers, ",") + u.Root
	}
}

// Same reports whether two URLs name the same store and root: the same kind, root and set
// of servers (in any order).
func (u URL) Same(o URL) bool {
	if u.Kind != o.Kind || u.Root != o.Root || len(u.Servers) != len(o.Servers) {
		return false
	}
	seen := map[string]int{}
	for _, s := range u.Servers {
		seen[strings.ToLower(s)]++
	}
	for _, s := range o.Servers {
		k := strings.ToLower(s)
		if seen[k] == 0 {
			return false
		}
		seen[k]--
	}
	return true
}
