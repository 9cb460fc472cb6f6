"""A docker-py flow against `berth system service` (DOCKER_HOST points at it; IMAGE is a
busybox image already there). Prints one line per step; any failure raises."""
import io
import os
import tarfile

import docker

client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"], version="1.43")
image = os.environ["IMAGE"]

assert client.ping()
print("version", client.version()["ApiVersion"])

out = client.containers.run(image, ["sh", "-c", "echo hello; echo oops >&2"], remove=True, stderr=True)
assert b"hello" in out, out
print("run ok")

c = client.containers.run(image, ["sh", "-c", "for i in 1 2 3; do echo tick$i; sleep 0.1; done; sleep 60"], detach=True, name="pyc")
lines = []
for chunk in c.logs(stream=True, follow=True):
    lines.append(chunk)
    if b"tick3" in b"".join(lines):
        break
print("logs stream ok")

code, output = c.exec_run(["sh", "-c", "echo in-exec; exit 4"])
assert code == 4 and output == b"in-exec\n", (code, output)
print("exec_run ok")

buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    data = b"from python\n"
    info = tarfile.TarInfo("py.txt")
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
assert c.put_archive("/tmp", buf.getvalue())
stream, stat = c.get_archive("/tmp/py.txt")
assert stat["name"] == "py.txt" and stat["size"] == 12, stat
got = io.BytesIO(b"".join(stream))
with tarfile.open(fileobj=got) as t:
    assert t.extractfile("py.txt").read() == b"from python\n"
print("archive ok")

c.reload()
assert c.status == "running", c.status
c.remove(force=True)
print("remove ok")

ctx = io.BytesIO()
with tarfile.open(fileobj=ctx, mode="w") as t:
    df = ("FROM %s\nRUN echo step > /step.txt\nCMD cat /step.txt\n" % image).encode()
    info = tarfile.TarInfo("Dockerfile")
    info.size = len(df)
    t.addfile(info, io.BytesIO(df))
ctx.seek(0)
img, logs = client.images.build(fileobj=ctx, custom_context=True, tag="pybuilt:1")
streamed = "".join(l.get("stream", "") for l in logs)
assert "Step 2/3" in streamed, streamed
assert "pybuilt:1" in img.tags, img.tags
assert client.containers.run("pybuilt:1", remove=True) == b"step\n"
print("build ok")

assert any(i.tags == ["pybuilt:1"] for i in client.images.list())
client.images.remove("pybuilt:1")
print("images ok")
