package kubelet

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/peapod/peapod/internal/objects"
)

// peapod has no scheduler: the pod manager binds a pod that names no node
// to this node, as the scheduler's binding would, so spec.nodeName shows
// where it runs. A pod bound to another node is not run here (a kubelet
// only runs the pods bound to it): it stays Pending with a Warning event
// and a status message saying why.

// ReasonNodeMismatch is the event and status reason of a pod bound to
// another node.
const ReasonNodeMismatch = "NodeMismatch"

// bind sets spec.nodeName of an unbound pod to this node and returns the
// stored pod.
func (w *worker) bind(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	obj, err := w.k.store.GuaranteedUpdate(ctx, "pods", pod.Namespace, pod.Name, func(cur objects.Object) (objects.Object, error) {
		p := cur.(*corev1.Pod)
		if p.UID != w.uid {
			return nil, apierrors.NewConflict(corev1.Resource("pods"), pod.Name, fmt.Errorf("uid changed"))
		}
		if p.Spec.NodeName == "" {
			p.Spec.NodeName = w.k.node
		}
		return p, nil
	})
	if err != nil {
		return nil, fmt.Errorf("bind pod %s to node %s: %w", podString(pod), w.k.node, err)
	}
	return obj.(*corev1.Pod), nil
}

// notHere records, once, that the pod is bound to another node: a Warning
// event and a Pending status whose message names both nodes.
func (w *worker) notHere(ctx context.Context, pod *corev1.Pod) {
	msg := fmt.Sprintf("Pod is bound to node %q, this node is %q: not run here", pod.Spec.NodeName, w.k.node)
	if pod.Status.Reason == ReasonNodeMismatch && pod.Status.Message == msg {
		return
	}
	w.event(pod, "", corev1.EventTypeWarning, ReasonNodeMismatch, msg)
	_, err := w.k.store.GuaranteedUpdate(ctx, "pods", pod.Namespace, pod.Name, func(cur objects.Object) (objects.Object, error) {
		p := cur.(*corev1.Pod)
		if p.UID != w.uid {
			return nil, apierrors.NewConflict(corev1.Resource("pods"), pod.Name, fmt.Errorf("uid changed"))
		}
		p.Status = corev1.PodStatus{
			Phase: corev1.PodPending, Reason: ReasonNodeMismatch, Message: msg,
			QOSClass: objects.QOSClass(&p.Spec),
			Conditions: []corev1.PodCondition{{
				Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: p.CreationTimestamp,
			}},
		}
		return p, nil
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
		w.k.log.Warn("write pod status", "pod", podString(pod), "err", err)
	}
}
