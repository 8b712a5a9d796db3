"""How many points ``avatarkit view`` draws at 30 frames per second, measured in a real browser.

For each point count the viewer (:class:`avatarkit.view.server.Viewer`) serves one point cloud (a
person-sized ellipsoid shell, 1.7 m tall, with a centimetre of noise, coloured) to headless
Chromium, which is told by the DevTools protocol to count the frames the page draws (a frame
with WebGL draw calls) while the camera is kept moving (wheel events every animation frame,
so the on-demand renderer draws every frame it can). The window is 1280 x 720.

The viewer's headless Chromium draws WebGL with SwiftShader, on the CPU: the figures are that
machine's CPU, not a GPU (``CHROMIUM_FLAGS="--use-angle=default"`` lets a Chromium on a machine
with a GPU and a display stack use it). ``POINTS`` (comma-separated) sets the counts,
``SECONDS`` the measuring time per count, ``WINDOW`` the window (``1280x720``).
"""

from __future__ import annotations

import json
import os
import time
import urllib.request

import numpy as np

from avatarkit.view.browser import headless_chromium
from avatarkit.view.scene import Points, Scene
from avatarkit.view.server import Viewer, free_port, settled_render

WIDTH, HEIGHT = (int(n) for n in os.environ.get("WINDOW", "1280x720").split("x"))
TARGET_FPS = 30.0

HOOK = """
window.__draws = 0;
for (const proto of [WebGLRenderingContext.prototype, WebGL2RenderingContext.prototype]) {
  for (const name of ["drawArrays", "drawElements", "drawArraysInstanced", "drawElementsInstanced"]) {
    const original = proto[name];
    if (original) proto[name] = function (...args) { window.__draws++; return original.apply(this, args); };
  }
}
"""

MEASURE = """
new Promise((resolve) => {
  const canvas = [...document.querySelectorAll("canvas")].sort((a, b) => b.width * b.height - a.width * a.height)[0];
  let frames = 0, last = window.__draws, start = null, sign = 1;
  function tick(now) {
    if (start === null) start = now;
    if (window.__draws !== last) { frames++; last = window.__draws; }
    canvas.dispatchEvent(new WheelEvent("wheel", {deltaY: 30 * sign, bubbles: true, cancelable: true,
      clientX: canvas.clientWidth / 2, clientY: canvas.clientHeight / 2}));
    sign = -sign;
    if (now - start < SECONDS * 1000) requestAnimationFrame(tick);
    else resolve(JSON.stringify({frames, seconds: (now - start) / 1000}));
  }
  requestAnimationFrame(tick);
})
"""


def person_points(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(count, 3) float32 points on a 1.7 m ellipsoid shell (+Y up, feet at 0) with 1 cm of
    noise, and (count, 3) uint8 colours by height."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(count, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    p = d * [0.25, 0.85, 0.15] + [0.0, 0.85, 0.0] + rng.normal(scale=0.01, size=(count, 3))
    t = np.clip(p[:, 1:2] / 1.7, 0, 1)
    colors = np.rint(np.array([40, 90, 220]) * (1 - t) + np.array([230, 120, 40]) * t).astype(np.uint8)
    return p.astype(np.float32), colors


class DevTools:
    """A minimal Chrome DevTools protocol client on one page (``websockets``, viser's own dependency)."""

    def __init__(self, port: int, deadline: float) -> None:
        from websockets.sync.client import connect

        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as answer:
                    pages = [t for t in json.loads(answer.read()) if t.get("type") == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium's DevTools did not answer")
            time.sleep(0.2)  # polling a process we started for its port: no event to wait on
        self.socket = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        self.next_id = 0

    def call(self, method: str, timeout: float = 120.0, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def close(self) -> None:
        self.socket.close()


def measure(count: int, seconds: float, flags: tuple[str, ...] = ()) -> dict:
    points, colors = person_points(count)
    scene = Scene([Points("/people", "points", points, {"height": colors}, 0.004, count)], {}, {})
    debug_port = free_port()
    extra = (f"--remote-debugging-port={debug_port}", "--remote-allow-origins=*", *flags)
    deadline = time.monotonic() + 300
    with Viewer(scene, "127.0.0.1", free_port()) as viewer, headless_chromium(viewer.url, WIDTH, HEIGHT, extra):
        tools = DevTools(debug_port, deadline)
        try:
            tools.call("Page.enable")
            tools.call("Page.addScriptToEvaluateOnNewDocument", source=HOOK)
            first = viewer.wait_for_client(max(deadline - time.monotonic(), 1))
            tools.call("Page.reload")
            while len(viewer.clients) < 2:  # the reloaded page connects again
                if time.monotonic() > deadline:
                    raise TimeoutError("the page did not reconnect")
                time.sleep(0.1)
            client = viewer.clients[-1]
            del first
            t = time.perf_counter()
            settled_render(client, 320, 180, deadline)  # everything arrived and is drawn
            loaded = time.perf_counter() - t
            script = MEASURE.replace("SECONDS", str(seconds))
            answer = tools.call("Runtime.evaluate", expression=script, awaitPromise=True, timeout=seconds + 120)
            result = json.loads(answer["result"]["value"])
            renderer = tools.call(
                "Runtime.evaluate",
                expression="(() => { const c = document.createElement('canvas').getContext('webgl2'); "
                "const e = c.getExtension('WEBGL_debug_renderer_info'); "
                "return e ? c.getParameter(e.UNMASKED_RENDERER_WEBGL) : c.getParameter(c.RENDERER); })()",
            )["result"].get("value", "?")
        finally:
            tools.close()
    fps = result["frames"] / result["seconds"]
    return {"points": count, "fps": round(fps, 1), "loaded_s": round(loaded, 1), "renderer": renderer}


def run() -> dict:
    counts = [int(n) for n in os.environ.get("POINTS", "1000,10000,100000,300000,1000000").split(",")]
    seconds = float(os.environ.get("SECONDS", "4"))
    flags = tuple(os.environ.get("CHROMIUM_FLAGS", "").split())
    rows = [measure(n, seconds, flags) for n in counts]
    held = [r["points"] for r in rows if r["fps"] >= TARGET_FPS]
    return {
        "window": f"{WIDTH}x{HEIGHT}",
        "renderer": rows[0]["renderer"],
        "fps_by_points": {str(r["points"]): r["fps"] for r in rows},
        "load_s_by_points": {str(r["points"]): r["loaded_s"] for r in rows},
        "most_points_at_30fps": max(held) if held else 0,
        "cpu_threads": len(os.sched_getaffinity(0)),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
