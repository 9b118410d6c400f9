"""What the controllers and the scheduler do, the way KWOK simulates a cluster without kubelets.

- Node lifecycle: a node whose Lease (kube-node-lease/<node>) and Ready heartbeat are both older than
  the grace period turns Ready=Unknown ("NotReady"), as kube-controller-manager's node controller does.
- Deployments get their replicas as pods directly (no ReplicaSet objects); a changed pod template
  replaces the pods (a Recreate rollout).
- The scheduler binds pending pods to Ready, schedulable nodes whose taints they tolerate and whose
  labels match their nodeSelector, fewest pods first; a bound pod is reported Running (no container runs).
- Garbage collection: pods owned by a deleted Deployment go with it, pods bound to a deleted Node too.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import secrets
from typing import Any

from .resources import node_status
from .selectors import labels_match_selector
from .store import Store, now_rfc3339, parse_time

log = logging.getLogger(__name__)
PODS, NODES, DEPLOYMENTS, LEASES = "/pods", "/nodes", "apps/deployments", "coordination.k8s.io/leases"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's rand.SafeEncodeString alphabet


def _safe(text: str, length: int) -> str:
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in hashlib.sha256(text.encode()).digest()[:length])


def tolerates(pod: dict[str, Any], taint: dict[str, Any]) -> bool:
    if taint.get("effect") == "PreferNoSchedule":
        return True
    for tol in pod.get("spec", {}).get("tolerations") or []:
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists" and (not tol.get("key") or tol["key"] == taint.get("key")):
            return True
        if tol.get("key") == taint.get("key") and tol.get("value", "") == taint.get("value", ""):
            return True
    return False


class Controllers:
    def __init__(self, store: Store, grace_seconds: float) -> None:
        self.store = store
        self.grace = dt.timedelta(seconds=grace_seconds)

    async def run(self) -> None:
        while True:
            changed = self.store.changed
            try:
                self.reconcile()
            except Exception:  # a controller bug must not stop the API server; it is logged and retried
                log.exception("reconcile failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=1.0)

    def reconcile(self) -> None:
        self.node_lifecycle()
        self.deployments()
        self.collect_garbage()
        self.schedule()

    def node_lifecycle(self) -> None:
        now = dt.datetime.now(dt.UTC)
        for node in self.store.objects(NODES):
            conditions = node.get("status", {}).get("conditions") or []
            ready = next((c for c in conditions if c.get("type") == "Ready"), None)
            if ready is None or ready.get("status") != "True":
                continue
            lease = self.store.get(LEASES, "kube-node-lease", node["metadata"]["name"])
            beats = [parse_time(ready.get("lastHeartbeatTime")),
                     parse_time(lease.get("spec", {}).get("renewTime")) if lease else None]
            latest = max((b for b in beats if b), default=parse_time(node["metadata"]["creationTimestamp"]))
            if latest and now - latest > self.grace:
                stamp = now_rfc3339()
                for condition in conditions:
                    condition.update(status="Unknown", reason="NodeStatusUnknown", lastTransitionTime=stamp,
                                     message="Kubelet stopped posting node status.")
                self.store.update(NODES, node, None)

    def deployments(self) -> None:
        for deployment in self.store.objects(DEPLOYMENTS):
            meta, spec = deployment["metadata"], deployment.get("spec", {})
            namespace, template = meta["namespace"], spec.get("template", {})
            pod_hash = _safe(json.dumps(template, sort_keys=True), 10)
            owned = [p for p in self.store.objects(PODS, namespace) if _owner_uid(p) == meta["uid"]]
            current = [p for p in owned if p["metadata"].get("labels", {}).get("pod-template-hash") == pod_hash]
            for pod in (p for p in owned if p not in current):
                self.store.delete(PODS, namespace, pod["metadata"]["name"])
            want = int(spec.get("replicas", 1))
            for pod in sorted(current, key=lambda p: p["metadata"]["creationTimestamp"], reverse=True)[:max(
                    len(current) - want, 0)]:
                self.store.delete(PODS, namespace, pod["metadata"]["name"])
                current.remove(pod)
            while len(current) < want:
                current.append(self.store.create(PODS, self._pod_for(deployment, pod_hash)))
            ready = sum(1 for p in current if _pod_ready(p))
            status = {"observedGeneration": meta.get("generation", 1), "replicas": len(current),
                      "updatedReplicas": len(current), "readyReplicas": ready, "availableReplicas": ready,
                      "conditions": [_deployment_condition(deployment, ready >= want)]}
            if ready < len(current):
                status["unavailableReplicas"] = len(current) - ready
            if {k: v for k, v in (deployment.get("status") or {}).items() if k != "conditions"} != {
                    k: v for k, v in status.items() if k != "conditions"}:
                deployment["status"] = status
                self.store.update(DEPLOYMENTS, deployment, None)

    @staticmethod
    def _pod_for(deployment: dict[str, Any], pod_hash: str) -> dict[str, Any]:
        meta, template = deployment["metadata"], deployment.get("spec", {}).get("template", {})
        labels = {**(template.get("metadata", {}).get("labels") or {}), "pod-template-hash": pod_hash}
        suffix = "".join(secrets.choice(SAFE_ALPHABET) for _ in range(5))
        spec = json.loads(json.dumps(template.get("spec", {})))
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("schedulerName", "default-scheduler")
        return {"apiVersion": "v1", "kind": "Pod", "spec": spec, "status": {"phase": "Pending"},
                "metadata": {"name": f"{meta['name']}-{pod_hash}-{suffix}", "namespace": meta["namespace"],
                             "labels": labels, "annotations": template.get("metadata", {}).get("annotations") or {},
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                                  "uid": meta["uid"], "controller": True,
                                                  "blockOwnerDeletion": True}]}}

    def collect_garbage(self) -> None:
        """Pods of a deleted Deployment, and pods bound to a deleted Node (the pod GC's orphans), go."""
        deployments = {d["metadata"]["uid"] for d in self.store.objects(DEPLOYMENTS)}
        nodes = {n["metadata"]["name"] for n in self.store.objects(NODES)}
        for pod in self.store.objects(PODS):
            ref = next((r for r in pod["metadata"].get("ownerReferences") or [] if r.get("kind") == "Deployment"), None)
            orphaned = pod.get("spec", {}).get("nodeName") not in nodes | {None, ""}
            if (ref and ref.get("uid") not in deployments) or orphaned:
                self.store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])

    def schedule(self) -> None:
        pending = [p for p in self.store.objects(PODS) if not p.get("spec", {}).get("nodeName")]
        if not pending:
            return
        nodes = [n for n in self.store.objects(NODES)
                 if node_status(n) == "Ready" and not n.get("spec", {}).get("unschedulable")]
        load = {n["metadata"]["name"]: 0 for n in nodes}
        for pod in self.store.objects(PODS):
            if pod.get("spec", {}).get("nodeName") in load:
                load[pod["spec"]["nodeName"]] += 1
        for pod in pending:
            fits = [n for n in nodes
                    if all(tolerates(pod, t) for t in n.get("spec", {}).get("taints") or [])
                    and labels_match_selector(n["metadata"].get("labels"),
                                              {"matchLabels": pod.get("spec", {}).get("nodeSelector") or {}})]
            if not fits:
                self._unschedulable(pod, len(nodes))
                continue
            node = min(fits, key=lambda n: (load[n["metadata"]["name"]], n["metadata"]["name"]))
            load[node["metadata"]["name"]] += 1
            self._bind(pod, node)

    def _unschedulable(self, pod: dict[str, Any], ready_nodes: int) -> None:
        status = pod.setdefault("status", {})
        if any(c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
               for c in status.get("conditions") or []):
            return
        status.update(phase="Pending", conditions=[{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastTransitionTime": now_rfc3339(),
            "message": f"0/{ready_nodes} nodes are available: no Ready, schedulable node the pod tolerates and "
                       "selects."}])
        self.store.update(PODS, pod, None)

    def _bind(self, pod: dict[str, Any], node: dict[str, Any]) -> None:
        stamp = now_rfc3339()
        addresses = node.get("status", {}).get("addresses") or []
        host_ip = next((a["address"] for a in addresses if a.get("type") == "InternalIP"), "")
        digest = hashlib.sha256(pod["metadata"]["uid"].encode()).digest()
        pod_ip = f"10.42.{digest[0]}.{digest[1] % 254 + 1}"
        pod["spec"]["nodeName"] = node["metadata"]["name"]
        pod["status"] = {
            "phase": "Running", "hostIP": host_ip, "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "startTime": stamp,
            "qosClass": "BestEffort",
            "conditions": [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": stamp}
                           for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "containerStatuses": [{"name": c.get("name", ""), "image": c.get("image", ""), "imageID": "",
                                   "ready": True, "started": True, "restartCount": 0,
                                   "containerID": f"simulated://{pod['metadata']['uid']}-{c.get('name', '')}",
                                   "state": {"running": {"startedAt": stamp}}}
                                  for c in pod["spec"].get("containers") or []],
        }
        self.store.update(PODS, pod, None)


def _owner_uid(pod: dict[str, Any]) -> str | None:
    return next((r.get("uid") for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


def _pod_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def _deployment_condition(deployment: dict[str, Any], available: bool) -> dict[str, Any]:
    stamp = now_rfc3339()
    return {"type": "Available", "status": "True" if available else "False", "lastUpdateTime": stamp,
            "lastTransitionTime": stamp,
            "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
            "message": "Deployment has minimum availability." if available
            else "Deployment does not have minimum availability."}
