package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/registrytest"
)

const volumesPod = `apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  password: s3cret
  user: admin
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  app.conf: "mode=fast"
  other: "x"
---
apiVersion: v1
kind: Pod
metadata:
  name: shared
spec:
  terminationGracePeriodSeconds: 2
  volumes:
  - name: scratch
    emptyDir: {}
  - name: secret
    secret:
      secretName: creds
      defaultMode: 0400
  - name: config
    configMap:
      name: settings
      items:
      - key: app.conf
        path: conf/app.conf
        mode: 0640
  containers:
  - name: writer
    image: %[1]s
    command: ["sh", "-c", "echo from-writer > /scratch/note; sleep 3600"]
    volumeMounts: [{name: scratch, mountPath: /scratch}]
  - name: reader
    image: %[1]s
    command: ["sh", "-c", "until [ -f /scratch/note ]; do sleep 0.1; done; cat /scratch/note; cat /etc/secret/password; echo; stat -L -c '%%a %%n' /etc/secret/password /etc/config/conf/app.conf; cat /etc/config/conf/app.conf; echo; ls /etc/config; echo END; sleep 3600"]
    volumeMounts:
    - {name: scratch, mountPath: /scratch}
    - {name: secret, mountPath: /etc/secret, readOnly: true}
    - {name: config, mountPath: /etc/config}
---
apiVersion: v1
kind: Pod
metadata:
  name: alone
spec:
  terminationGracePeriodSeconds: 2
  volumes:
  - name: scratch
    emptyDir: {}
  containers:
  - name: c
    image: %[1]s
    command: ["sh", "-c", "sleep 2; if [ -e /scratch/note ]; then echo SHARED; else echo ISOLATED; fi; sleep 3600"]
    volumeMounts: [{name: scratch, mountPath: /scratch}]
`

// Issue 5, acceptance 5: an emptyDir is shared by the containers of a pod
// and not by another pod; secret and configMap files have the right
// content and modes.
func TestPodVolumes(t *testing.T) {
	d := startPodDaemon(t)
	reg := busyboxRegistry(t, d, registrytest.Options{TLS: true}, "busybox:1")
	cleanupPods(t, d, "default")
	apply(t, d, "volumes.yaml", fmt.Sprintf(volumesPod, reg.Ref("busybox:1")))

	got := waitLog(t, d, "default", "shared", "reader", "END")
	want := "from-writer\ns3cret\n400 /etc/secret/password\n640 /etc/config/conf/app.conf\nmode=fast\nconf\nEND\n"
	if got != want {
		t.Errorf("reader saw %q, want %q", got, want)
	}
	if got := waitLog(t, d, "default", "alone", "c", "ISO"); !strings.Contains(got, "ISOLATED") {
		t.Errorf("another pod's emptyDir: %q", got)
	}
	row := waitStatus(t, d, "default", "shared", "Running", 10*time.Second)
	if row[1] != "2/2" {
		t.Errorf("row %v", row)
	}
}
