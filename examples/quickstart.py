"""A first shoal program: tasks, objects and a dependency chain on the embedded local cluster.

Run: python examples/quickstart.py
"""

import time

import shoal as ray

ray.init()


@ray.remote
def square(x):
    return x * x


@ray.remote
def add(a, b):
    return a + b


start = time.perf_counter()
futures = [square.remote(i) for i in range(4)]
print("squares:", ray.get(futures))  # [0, 1, 4, 9]

# ObjectRefs passed to tasks are resolved before the task runs.
total = add.remote(futures[2], futures[3])
print("4 + 9 =", ray.get(total))

data = ray.put(list(range(1000)))
print("sum via the object store:", ray.get(add.remote(ray.get(data)[0], ray.get(data)[-1])))

ready, pending = ray.wait([square.remote(i) for i in range(10)], num_returns=5)
print(f"{len(ready)} ready, {len(pending)} pending")
print("cluster:", {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")})
print(f"done in {time.perf_counter() - start:.3f} s")
ray.shutdown()
