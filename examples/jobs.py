"""Jobs on shoal (Ray's Jobs API): start a head, submit a script with its working directory
and an environment variable, follow its log, stop a long job, list them.

    python examples/jobs.py

On a cluster you already run, the same is `shoal job submit --working-dir DIR -- python
script.py`, or `JobSubmissionClient("http://HEAD:8265")` from Python. This example starts a
head of its own (in a private session root, so it touches no other cluster here) and stops
it at the end.
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

SCRIPT = textwrap.dedent("""
    import os
    import shoal as ray          # `import ray` on Ray: the same program

    ray.init()                   # joins the cluster that runs the job

    @ray.remote
    def square(x):
        return x * x

    print(os.environ["GREETING"], sum(ray.get([square.remote(i) for i in range(10)])))
""")


def main() -> None:
    root = tempfile.mkdtemp(prefix="shoal-example-jobs-")
    env = {**os.environ, "SHOAL_SESSION_ROOT": root}
    os.environ["SHOAL_SESSION_ROOT"] = root  # this process finds that head (and its token)
    cli = [sys.executable, "-m", "shoal.cli"]
    subprocess.run(cli + ["start", "--head", "--port", "0", "--dashboard-port", "0"],
                   check=True, env=env, capture_output=True)
    try:
        from shoal.job_submission import JobStatus, JobSubmissionClient

        client = JobSubmissionClient()  # this machine's head; its token is found
        with tempfile.TemporaryDirectory() as project:
            with open(os.path.join(project, "main.py"), "w") as f:
                f.write(SCRIPT)
            sid = client.submit_job(entrypoint="python main.py",
                                    runtime_env={"working_dir": project,
                                                 "env_vars": {"GREETING": "sum of squares:"}})

        async def follow(job_id):
            async for chunk in client.tail_job_logs(job_id):
                print(chunk, end="")

        asyncio.run(follow(sid))
        print("status:", client.get_job_status(sid))
        assert client.get_job_status(sid) == JobStatus.SUCCEEDED

        long_job = client.submit_job(entrypoint="echo started; sleep 600")
        print("stopping", long_job, "->", client.stop_job(long_job))
        asyncio.run(follow(long_job))
        print("status:", client.get_job_status(long_job))
        print(json.dumps([(j.submission_id, str(j.status)) for j in client.list_jobs()
                          if j.submission_id]))
    finally:
        subprocess.run(cli + ["stop"], env=env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
