"""The official Python client against k8rs: CRUD, list with selectors, watch, errors."""
import sys
import threading

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config()
v1 = client.CoreV1Api()

ns = client.V1Namespace(metadata=client.V1ObjectMeta(name="py-test"))
v1.create_namespace(ns)

events = []


def follow():
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_config_map, "py-test", timeout_seconds=20):
        obj = ev["object"]
        events.append((ev["type"], obj.metadata.name, (obj.data or {}).get("k")))
        if ev["type"] == "DELETED":
            w.stop()


t = threading.Thread(target=follow)
t.start()

cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg", labels={"app": "py"}), data={"k": "v"})
created = v1.create_namespaced_config_map("py-test", cm)
assert created.metadata.uid, created
got = v1.read_namespaced_config_map("cfg", "py-test")
assert got.data == {"k": "v"}, got.data
listed = v1.list_namespaced_config_map("py-test", label_selector="app=py")
assert [c.metadata.name for c in listed.items] == ["cfg"], listed.items
v1.patch_namespaced_config_map("cfg", "py-test", {"data": {"k": "v2"}})
assert v1.read_namespaced_config_map("cfg", "py-test").data["k"] == "v2"

try:
    v1.read_namespaced_config_map("nope", "py-test")
    sys.exit("expected a 404")
except ApiException as e:
    assert e.status == 404, e.status

try:
    v1.create_namespaced_config_map("py-test", cm)
    sys.exit("expected a 409")
except ApiException as e:
    assert e.status == 409 and "AlreadyExists" in e.body, e.body

v1.delete_namespaced_config_map("cfg", "py-test")
t.join(timeout=20)
cfg = [(k, v) for k, n, v in events if n == "cfg"]
assert cfg[0][0] == "ADDED" and cfg[-1][0] == "DELETED", events
# The patch shows as MODIFIED, or already in the ADDED of the initial list when the
# watcher thread started late.
assert ("MODIFIED", "v2") in cfg or cfg[0] == ("ADDED", "v2"), events
print("ok")
