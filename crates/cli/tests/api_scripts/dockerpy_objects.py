"""docker-py on pull, volumes and networks through `berth system service`.
Environment: DOCKER_HOST, REMOTE (an image in the test's local registry)."""
import os

import docker

client = docker.from_env(timeout=60)
remote = os.environ["REMOTE"]

img = client.images.pull(remote)
assert remote in img.tags, img.tags
print("pull ok")

vol = client.volumes.create(name="pyvol", labels={"team": "py"})
assert vol.attrs["Driver"] == "local", vol.attrs
assert vol.attrs["Mountpoint"].endswith("/volumes/pyvol/_data"), vol.attrs
client.containers.run(remote, ["sh", "-c", "echo kept > /data/f"], volumes={"pyvol": {"bind": "/data", "mode": "rw"}}, remove=True)
out = client.containers.run(remote, ["cat", "/data/f"], volumes=["pyvol:/data"], remove=True)
assert out == b"kept\n", out
assert [v.name for v in client.volumes.list(filters={"label": "team=py"})] == ["pyvol"]
client.volumes.get("pyvol").remove()
assert not any(v.name == "pyvol" for v in client.volumes.list())
print("volumes ok")

net = client.networks.create("pynet", driver="bridge", labels={"team": "py"})
assert client.networks.get("pynet").attrs["Driver"] == "bridge"
srv = client.containers.run(remote, ["sleep", "300"], name="pysrv", network="pynet", detach=True)
out = client.containers.run(remote, ["ping", "-c", "1", "-W", "5", "pysrv"], network="pynet", remove=True)
assert b"1 packets received" in out, out
net.reload()
assert srv.id in net.attrs["Containers"], net.attrs
other = client.networks.create("pyother")
other.connect(srv, aliases=["db"])
out = client.containers.run(remote, ["ping", "-c", "1", "-W", "5", "db"], network="pyother", remove=True)
assert b"1 packets received" in out, out
other.disconnect(srv)
other.remove()
srv.remove(force=True)
net.remove()
assert not any(n.name in ("pynet", "pyother") for n in client.networks.list())
print("networks ok")
