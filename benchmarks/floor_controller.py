"""The floor of benchmarks/scale.py: the least a controller can do, as a process of its own.

    python benchmarks/floor_controller.py KUBECONFIG NAMESPACE THREADS

It watches the FlinkDeployments labelled `kappa-bench/request=true` (one list-then-watch,
tests/doubles/kube_watch.py) and answers each new one with one create: a copy of it named `<name>-child`,
from THREADS threads, each with its own client. It reads nothing else, decides nothing and records nothing.
It prints `ready` once its watch has listed, and runs until its standard input closes.
"""

from __future__ import annotations

import copy
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client as kube_client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))
from tests.doubles.fko import FLINK_DEPLOYMENTS
from tests.doubles.kube_watch import Obj, ResourceWatcher, api_client

REQUEST = "kappa-bench/request"


def main() -> None:
    kubeconfig, namespace, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    r = FLINK_DEPLOYMENTS
    local = threading.local()
    answered: set[str] = set()
    lock = threading.Lock()
    pool = ThreadPoolExecutor(threads)

    def answer(request: Obj) -> None:
        api: Any = getattr(local, "api", None)
        if api is None:
            api = local.api = kube_client.CustomObjectsApi(api_client(kubeconfig))
        meta = request["metadata"]
        child = {
            "apiVersion": request["apiVersion"],
            "kind": request["kind"],
            "metadata": {"name": f"{meta['name']}-child", "labels": {"app.kubernetes.io/name": "floor"}},
            "spec": copy.deepcopy(request["spec"]),
        }
        api.create_namespaced_custom_object(r.group, r.version, namespace, r.plural, child)

    def on_request(kind: str, obj: Obj) -> None:  # on the watch thread: hand over, never block
        meta = obj["metadata"]
        if kind == "DELETED" or meta["namespace"] != namespace:
            return
        with lock:
            if meta["name"] in answered:
                return
            answered.add(meta["name"])
        pool.submit(answer, obj)

    watcher = ResourceWatcher(
        kubeconfig, r, on_change=on_request, name="floor-controller", label_selector=f"{REQUEST}=true"
    )
    watcher.start(60)
    print("ready", flush=True)
    sys.stdin.read()  # until the benchmark closes it
    watcher.stop()
    pool.shutdown(wait=True)


if __name__ == "__main__":
    main()
