// Package helm holds the test of the Helm chart: it lints and renders the chart with the
// pinned helm CLI, decodes every object strictly with the Kubernetes API types, and loads
// the rendered config with the project's own config loader.
package helm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
)

var chartDir = filepath.Join(testenv.RepoRoot(), "deploy", "helm", "pulsar-metadata-backup")

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// (monitoring.coreos.com/v1) that the chart writes, field names as in its CRD. Decoding is
// strict, so a field the chart writes and this type lacks fails the test.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// rendered is what one `helm template` produced, by kind.
type rendered struct {
	configMap       corev1.ConfigMap
	cfg             config.Config // the ConfigMap's config.yaml, through config.Parse
	services        map[string]corev1.Service
	serviceAccounts []corev1.ServiceAccount
	deployments     map[string]appsv1.Deployment // by app.kubernetes.io/component
	serviceMonitors []serviceMonitor
}

func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testenv.Helm(t), args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out.String(), nil
}

// splitDocuments splits a multi-document YAML stream, dropping documents that hold only
// comments.
func splitDocuments(t *testing.T, s string) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(s)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, doc)
		}
		if v != nil {
			docs = append(docs, doc)
		}
	}
}

// decodeStrict decodes one object into its API type; a field the type does not have, or a
// field given twice, is an error.
func decodeStrict(doc []byte, v any) error { return yaml.UnmarshalStrict(doc, v) }

// render lints the chart and renders it with args, decoding each object by kind.
func render(t *testing.T, args ...string) rendered {
	t.Helper()
	if out, err := helm(t, append([]string{"lint", "--strict", chartDir}, args...)...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err := helm(t, append([]string{"template", "pmb", chartDir, "--namespace", "pulsar"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	r := rendered{deployments: map[string]appsv1.Deployment{}, services: map[string]corev1.Service{}}
	configMaps := 0
	for _, doc := range splitDocuments(t, out) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("object without apiVersion and kind: %v\n%s", err, doc)
		}
		var err error
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ConfigMap":
			err = decodeStrict(doc, &r.configMap)
			configMaps++
		case "v1 Service":
			var o corev1.Service
			err = decodeStrict(doc, &o)
			r.services[o.Spec.Ports[0].Name] = o
		case "v1 ServiceAccount":
			var o corev1.ServiceAccount
			err = decodeStrict(doc, &o)
			r.serviceAccounts = append(r.serviceAccounts, o)
		case "apps/v1 Deployment":
			var o appsv1.Deployment
			err = decodeStrict(doc, &o)
			r.deployments[o.Labels["app.kubernetes.io/component"]] = o
		case "monitoring.coreos.com/v1 ServiceMonitor":
			var o serviceMonitor
			err = decodeStrict(doc, &o)
			r.serviceMonitors = append(r.serviceMonitors, o)
		default:
			t.Fatalf("the chart renders %s %s, which this test does not decode", tm.APIVersion, tm.Kind)
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", tm.Kind, err, doc)
		}
	}
	if configMaps != 1 || len(r.deployments) != 2 || r.deployments["worker"].Name == "" || r.deployments["api"].Name == "" {
		t.Fatalf("want one ConfigMap and the worker and API Deployments, got %d ConfigMaps and Deployments %v",
			configMaps, slices.Sorted(maps.Keys(r.deployments)))
	}
	raw, ok := r.configMap.Data["config.yaml"]
	if !ok {
		t.Fatalf("ConfigMap %s has no config.yaml: %v", r.configMap.Name, slices.Sorted(maps.Keys(r.configMap.Data)))
	}
	// The project's own loader: unknown keys, bad values and bad combinations fail here.
	if r.cfg, err = config.Parse(strings.NewReader(raw)); err != nil {
		t.Fatalf("rendered config does not load: %v\n%s", err, raw)
	}
	checkPods(t, r)
	return r
}

func container(t *testing.T, d appsv1.Deployment) corev1.Container {
	t.Helper()
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: want one container", d.Name)
	}
	return d.Spec.Template.Spec.Containers[0]
}

func volume(t *testing.T, d appsv1.Deployment, name string) corev1.Volume {
	t.Helper()
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("%s: no volume %s", d.Name, name)
	return corev1.Volume{}
}

// mountAt returns the volume mounted at dir in c.
func mountAt(t *testing.T, d appsv1.Deployment, c corev1.Container, dir string) (corev1.VolumeMount, corev1.Volume) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.MountPath == dir {
			return m, volume(t, d, m.Name)
		}
	}
	t.Fatalf("%s: nothing mounted at %s", d.Name, dir)
	return corev1.VolumeMount{}, corev1.Volume{}
}

func portNumber(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %s", c.Name, name)
	return 0
}

// checkPods checks what every rendering must hold: both pods run as non-root on a
// read-only root, read the rendered config from the ConfigMap, probe /healthz and /readyz
// on the port the config gives them, and take ZooKeeper's auth from a Secret.
func checkPods(t *testing.T, r rendered) {
	t.Helper()
	ports := map[string]int{"worker": r.cfg.Worker.MetricsPort, "api": r.cfg.Backup.WebServerPort}
	for component, d := range r.deployments {
		pod := d.Spec.Template.Spec
		c := container(t, d)
		if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
			t.Errorf("%s: pod may run as root: %+v", d.Name, pod.SecurityContext)
		}
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: container security context %+v", d.Name, sc)
		}
		// --config names the ConfigMap's config.yaml.
		n := len(c.Command)
		if n < 3 || c.Command[n-2] != "--config" || path.Base(c.Command[n-1]) != "config.yaml" {
			t.Fatalf("%s: command %v", d.Name, c.Command)
		}
		mount, vol := mountAt(t, d, c, path.Dir(c.Command[n-1]))
		if vol.ConfigMap == nil || vol.ConfigMap.Name != r.configMap.Name || !mount.ReadOnly {
			t.Errorf("%s: %s is not the ConfigMap %s, read-only", d.Name, path.Dir(c.Command[n-1]), r.configMap.Name)
		}
		// Probes on the port the binary listens on.
		port := portNumber(t, c, map[string]string{"worker": "metrics", "api": "http"}[component])
		if int(port) != ports[component] {
			t.Errorf("%s: container port %d, config says %d", d.Name, port, ports[component])
		}
		for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
			if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || portNumber(t, c, probe.HTTPGet.Port.StrVal) != port {
				t.Errorf("%s: want a probe of %s on port %d, got %+v", d.Name, want, port, probe)
			}
		}
		// The digest comes from a Secret mounted where zookeeper.authFile points.
		if f := r.cfg.ZooKeeper.AuthFile; f != "" {
			mount, vol := mountAt(t, d, c, path.Dir(f))
			if vol.Secret == nil || !mount.ReadOnly || len(vol.Secret.Items) != 1 || vol.Secret.Items[0].Path != path.Base(f) {
				t.Errorf("%s: %s is not a Secret's key: %+v", d.Name, f, vol)
			}
		}
	}
	// The worker stages on an emptyDir; nothing else in either pod is writable but /tmp.
	w := r.deployments["worker"]
	if _, vol := mountAt(t, w, container(t, w), r.cfg.Backup.StagingDir); vol.EmptyDir == nil {
		t.Errorf("backup.stagingDir %s is not an emptyDir", r.cfg.Backup.StagingDir)
	}
	// No secret in the ConfigMap.
	raw := r.configMap.Data["config.yaml"]
	if r.cfg.ZooKeeper.Auth != "" || strings.Contains(raw, "digest:") || strings.Contains(strings.ToUpper(raw), "AWS_") {
		t.Errorf("the ConfigMap holds a secret:\n%s", raw)
	}
	// The API Service and the workers' metrics Service reach the named ports.
	for name, component := range map[string]string{"http": "api", "metrics": "worker"} {
		s, ok := r.services[name]
		if !ok || s.Spec.Selector["app.kubernetes.io/component"] != component || s.Spec.Ports[0].TargetPort.StrVal != name {
			t.Errorf("no Service to the %s port of the %s pods: %+v", name, component, s.Spec)
		}
	}
}

func envSecrets(c corev1.Container) []string {
	var out []string
	for _, e := range c.EnvFrom {
		if e.SecretRef != nil {
			out = append(out, e.SecretRef.Name)
		}
	}
	return out
}

func TestChartDefaults(t *testing.T) {
	r := render(t)
	want := config.Default()
	cfg := r.cfg
	if !cfg.Backup.Enable || cfg.Restore.Enable || cfg.Backup.BackupInterval != want.Backup.BackupInterval ||
		cfg.Backup.WebServerPort != want.Backup.WebServerPort || cfg.Backup.Bucket != want.Backup.Bucket ||
		cfg.Backup.BackupPrefix != want.Backup.BackupPrefix || cfg.Backup.ManagedLedgerPath != want.Backup.ManagedLedgerPath ||
		cfg.ZooKeeper.AuthFile != "" || cfg.Worker.MetricsPort == 0 {
		t.Errorf("default config %+v", cfg)
	}
	for _, d := range r.deployments {
		if s := envSecrets(container(t, d)); len(s) != 0 {
			t.Errorf("%s: AWS secret %v without secrets.use", d.Name, s)
		}
		if d.Spec.Template.Spec.ServiceAccountName != r.serviceAccounts[0].Name {
			t.Errorf("%s runs as %q, not the chart's service account %q", d.Name, d.Spec.Template.Spec.ServiceAccountName, r.serviceAccounts[0].Name)
		}
	}
	if len(r.serviceMonitors) != 0 {
		t.Error("a ServiceMonitor without serviceMonitor.enabled")
	}
}

// A restore values file written as StreamNative's are (numbers as strings, the AWS secret
// and an IAM role), with ZooKeeper auth from a Secret and a ServiceMonitor.
func TestChartRestoreValues(t *testing.T) {
	r := render(t, "-f", filepath.Join(chartDir, "ci", "restore-values.yaml"))
	cfg := r.cfg
	if !cfg.Restore.Enable || cfg.Restore.RestorePoint != "s3a://my-backuprestore/pulsar-backup-1623721488825.tar.gz" ||
		cfg.Restore.RestoreVersion != "1" || cfg.Backup.Enable || cfg.Backup.WebServerPort != 8088 || cfg.Backup.BackupInterval != 600 ||
		cfg.Backup.BackupPrefix != "pulsar-backup" {
		t.Errorf("restore config %+v", cfg)
	}
	if servers, _ := cfg.ZooKeeper.ServerList(); len(servers) != 2 {
		t.Errorf("zookeeper.servers %q", cfg.ZooKeeper.Servers)
	}
	if cfg.ZooKeeper.AuthFile == "" {
		t.Error("zookeeper.auth.secretName set, but no zookeeper.authFile")
	}
	for _, d := range r.deployments {
		if s := envSecrets(container(t, d)); !slices.Equal(s, []string{"aws-secret"}) {
			t.Errorf("%s: AWS secrets %v, want the restore's aws-secret", d.Name, s)
		}
	}
	if len(r.serviceAccounts) != 1 || r.serviceAccounts[0].Annotations["eks.amazonaws.com/role-arn"] == "" {
		t.Errorf("service account annotations: %+v", r.serviceAccounts)
	}
	if len(r.serviceMonitors) != 1 {
		t.Fatalf("%d ServiceMonitors", len(r.serviceMonitors))
	}
	sm := r.serviceMonitors[0]
	var ports []string
	for _, e := range sm.Spec.Endpoints {
		ports = append(ports, e.Port)
		if e.Path != "/metrics" {
			t.Errorf("ServiceMonitor endpoint %+v", e)
		}
	}
	if !slices.Equal(ports, []string{"http", "metrics"}) {
		t.Errorf("ServiceMonitor scrapes ports %v", ports)
	}
	for name, s := range r.services {
		for k, v := range sm.Spec.Selector.MatchLabels {
			if s.Labels[k] != v {
				t.Errorf("ServiceMonitor selector %s=%s misses the %s Service", k, v, name)
			}
		}
	}
}

func TestChartScalesWorkersAndTakesBackupSecret(t *testing.T) {
	r := render(t, "--set", "worker.replicas=3", "--set", "customTools.backup.secrets.use=true",
		"--set", "customTools.backup.secrets.secretName=backup-keys", "--set", "customTools.restore.secrets.use=true",
		"--set", "customTools.serviceAccount.create=false", "--set", "customTools.serviceAccount.name=existing")
	if n := r.deployments["worker"].Spec.Replicas; n == nil || *n != 3 {
		t.Errorf("worker replicas %v", n)
	}
	for _, d := range r.deployments {
		if s := envSecrets(container(t, d)); !slices.Equal(s, []string{"backup-keys"}) {
			t.Errorf("%s: AWS secrets %v, want backup-keys", d.Name, s)
		}
		if d.Spec.Template.Spec.ServiceAccountName != "existing" {
			t.Errorf("%s: service account %q", d.Name, d.Spec.Template.Spec.ServiceAccountName)
		}
	}
	if len(r.serviceAccounts) != 0 {
		t.Errorf("a ServiceAccount rendered with create=false")
	}
}

// Values the binaries would refuse fail at `helm template`, naming the key.
func TestChartRefusesBadValues(t *testing.T) {
	for _, c := range []struct{ set, want string }{
		{"worker.metricsPort=0", "worker.metricsPort"},
		{"customTools.backup.secrets.use=true,customTools.backup.secrets.secretName=", "customTools.backup.secrets.secretName"},
		{"zookeeper.servers=", "zookeeper.servers"},
	} {
		_, err := helm(t, "template", "pmb", chartDir, "--set", c.set)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--set %s: err %v, want one naming %s", c.set, err, c.want)
		}
	}
}

// The decoder this test relies on does refuse a field the API type lacks.
func TestStrictDecodeRefusesUnknownFields(t *testing.T) {
	var d appsv1.Deployment
	err := decodeStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: 1\n  replica: 2\n"), &d)
	if err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("unknown field accepted: %v", err)
	}
}
