package runtime

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/container/conmon"
	"github.com/peapod/peapod/internal/image/store"
)

const timeoutOpen = 5 * time.Second

var (
	bucketSandboxes  = []byte("sandboxes")
	bucketContainers = []byte("containers")
)

// sandboxRecord is what survives a daemon restart about a sandbox.
type sandboxRecord struct {
	ID     string `json:"id"`
	Owner  string `json:"owner"`
	Config []byte `json:"config"` // PodSandboxConfig, protobuf
	// Ready is false once the sandbox was stopped (or never finished
	// starting); a dead pause process also makes it NOTREADY.
	Ready bool `json:"ready"`
	// NetNS is the pinned network namespace, "" with host network or after
	// stop.
	NetNS string   `json:"netns,omitempty"`
	IPs   []string `json:"ips,omitempty"`
	// PausePID and PauseStart (start time in clock ticks) identify the
	// pause process.
	PausePID   int    `json:"pausePid,omitempty"`
	PauseStart uint64 `json:"pauseStart,omitempty"`
	// PauseImage names the pause image; PauseRootfs is set when it is
	// an overlay mounted for this sandbox.
	PauseImage  string `json:"pauseImage"`
	PauseRootfs string `json:"pauseRootfs,omitempty"`
	Dir         string `json:"dir"`
	Shm         string `json:"shm,omitempty"`
	CreatedAt   int64  `json:"createdAt"`
}

// containerRecord is what survives a daemon restart about a container.
type containerRecord struct {
	ID         string   `json:"id"`
	SandboxID  string   `json:"sandboxId"`
	Owner      string   `json:"owner"`
	Config     []byte   `json:"config"` // ContainerConfig, protobuf
	ImageID    string   `json:"imageId"`
	ImageName  string   `json:"imageName"`
	Layers     []string `json:"layers,omitempty"` // diffIDs, leased while the container exists
	Bundle     string   `json:"bundle"`
	LogPath    string   `json:"logPath"`
	State      int32    `json:"state"` // runtimeapi.ContainerState
	PID        int      `json:"pid,omitempty"`
	CreatedAt  int64    `json:"createdAt"`
	StartedAt  int64    `json:"startedAt,omitempty"`
	FinishedAt int64    `json:"finishedAt,omitempty"`
	ExitCode   int32    `json:"exitCode,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	Message    string   `json:"message,omitempty"`
}

// sandbox is a sandbox in memory. mu serialises its lifecycle and guards rec.
type sandbox struct {
	mu      sync.Mutex
	owner   string // immutable
	id      string // immutable
	rec     sandboxRecord
	config  *runtimeapi.PodSandboxConfig // immutable
	removed bool
}

// container is a container in memory. mu serialises its lifecycle and
// guards rec and handle.
type container struct {
	mu        sync.Mutex
	owner     string // immutable
	id        string // immutable
	sandboxID string // immutable
	rec       containerRecord
	config    *runtimeapi.ContainerConfig
	handle    *conmon.Handle // nil until conmon created it
	lease     *store.Lease   // keeps the image's layers from GC; may be nil
	removed   bool
}

func (r *Runtime) putSandbox(rec *sandboxRecord) error {
	return r.put(bucketSandboxes, rec.ID, rec)
}

func (r *Runtime) putContainer(rec *containerRecord) error {
	return r.put(bucketContainers, rec.ID, rec)
}

func (r *Runtime) put(bucket []byte, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("record %s: %w", id, err)
	}
	err = r.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), data)
	})
	if err != nil {
		return fmt.Errorf("record %s: %w", id, err)
	}
	return nil
}

func (r *Runtime) del(bucket []byte, id string) error {
	err := r.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		return b.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("delete record %s: %w", id, err)
	}
	return nil
}

// load reads every record of both buckets.
func (r *Runtime) load() ([]sandboxRecord, []containerRecord, error) {
	var ss []sandboxRecord
	var cs []containerRecord
	err := r.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketSandboxes); b != nil {
			if err := b.ForEach(func(k, v []byte) error {
				var rec sandboxRecord
				if err := json.Unmarshal(v, &rec); err != nil {
					return fmt.Errorf("sandbox record %s: %w", k, err)
				}
				ss = append(ss, rec)
				return nil
			}); err != nil {
				return err
			}
		}
		if b := tx.Bucket(bucketContainers); b != nil {
			return b.ForEach(func(k, v []byte) error {
				var rec containerRecord
				if err := json.Unmarshal(v, &rec); err != nil {
					return fmt.Errorf("container record %s: %w", k, err)
				}
				cs = append(cs, rec)
				return nil
			})
		}
		return nil
	})
	return ss, cs, err
}

func marshalProto(m proto.Message) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

func unmarshalProto(data []byte, m proto.Message) error {
	return proto.Unmarshal(data, m)
}

func cloneConfig(c *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig {
	return proto.Clone(c).(*runtimeapi.ContainerConfig)
}
