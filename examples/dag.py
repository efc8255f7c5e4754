"""Ray Core's DAG API on shoal: build a graph of tasks and actor calls with .bind(), run it
with .execute() as often as you like, each time with new input.

Run: python examples/dag.py  (writes the graph as DOT text to a temporary file)
"""

import os
import tempfile
import warnings

import shoal as ray
from shoal.dag import InputNode, MultiOutputNode

ray.init()
# Ray 2.60 marks the non-compiled execute() deprecated and warns at each call; so does shoal.
warnings.filterwarnings("ignore", r"DAGNode\.execute\(\) is deprecated", DeprecationWarning)


@ray.remote
def preprocess(x):
    return x * 10


@ray.remote
def combine(a, b):
    return a + b


@ray.remote
class Model:
    def __init__(self, weight):
        self.weight = weight
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.weight * x

    def num_calls(self):
        return self.calls


# Nothing runs while the graph is built: .bind() only records the calls.
with InputNode() as inp:
    features = preprocess.bind(inp[0])  # the first argument of execute()
    m1, m2 = Model.bind(1), Model.options(max_restarts=1).bind(2)
    dag = combine.bind(m1.forward.bind(features), m2.forward.bind(inp.bias))

# Each execute() runs every node once and gives an ObjectRef for the result.
print("execute(1, bias=5):", ray.get(dag.execute(1, bias=5)))  # 1*10 + 2*5 = 20
print("execute(2, bias=0):", ray.get(dag.execute(2, bias=0)))  # 2*10 + 0 = 20

# Several outputs at once: a list of refs.
with InputNode() as inp:
    both = MultiOutputNode([preprocess.bind(inp), combine.bind(inp, 1)])
print("MultiOutputNode:", ray.get(both.execute(3)))  # [30, 4]

# Methods bound on a live actor reuse it across executes.
model = Model.remote(3)
with InputNode() as inp:
    served = model.forward.bind(preprocess.bind(inp))
print("live actor:", [ray.get(served.execute(i)) for i in range(3)])  # [0, 30, 60]
print("calls on it:", ray.get(model.num_calls.remote()))  # 3

# The graph as DOT text (ray.dag.plot draws PNGs when pydot and graphviz are installed).
path = os.path.join(tempfile.gettempdir(), "shoal-example-dag.dot")
ray.dag.plot(dag, path)
print("graph written to", path)
print(open(path).read())

ray.shutdown()
