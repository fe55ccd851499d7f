#!/usr/bin/python3
"""Drives a real headless Chromium over the DevTools protocol through a script of steps, for
the dashboard's browser tests (tests/controller/web). Every wait is bounded; the browser is
killed at the end, whatever happened.

usage: cdp.py --chromium PATH --out DIR SCRIPT.json

SCRIPT.json is a list of steps, each an object with one of:
  {"go": URL}                          navigate, then wait for the load
  {"go_js": JS}                        navigate to the URL the expression gives
  {"fill": CSS, "value": TEXT}         set an input's value
  {"click": CSS}                       click an element (then "wait" for what it does)
  {"wait": JS, "what": TEXT, "timeout": S}   poll until the expression is truthy (default 20 s)
  {"check": JS, "what": TEXT}          the expression must be truthy now
  {"eval": JS}                         run it, ignore the value
  {"touch": PATH}                      write PATH (tells the test a step was reached)
  {"shot": NAME, "width": W, "height": H}   a PNG screenshot of the page at that size, in DIR
  {"size": [W, H]}                     lay the page out at that size (a phone's: mobile), until
                                       the next "size": null
Prints a line per step; on the first failure prints why, the page's URL and text, and exits 1.
"""
import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # Debian's python3-websocket


class Page:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
        raise TimeoutError(f"{method}: no answer in 30 s")

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails'].get('exception', {}).get('description', r['exceptionDetails'])}")
        return r.get("result", {}).get("value")

    def wait(self, expr, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.js(expr)
                if last:
                    return True, last
            except RuntimeError as e:  # the page is between documents
                last = str(e)
            time.sleep(0.1)
        return False, last


def start_browser(chromium, profile):
    args = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions", "--mute-audio",
            "--remote-allow-origins=*", "--remote-debugging-port=0", f"--user-data-dir={profile}",
            "--window-size=1280,800", "about:blank"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(os.path.join(profile, "chromium.log"), "w"))
    port_file = os.path.join(profile, "DevToolsActivePort")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited {proc.returncode}: see {profile}/chromium.log")
        if os.path.exists(port_file) and open(port_file).read().count("\n") >= 1:
            port = int(open(port_file).read().split("\n")[0])
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return proc, pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("chromium did not open its DevTools port in 60 s")


def run(page, steps, out):
    page.call("Page.enable")
    page.call("Runtime.enable")
    for n, step in enumerate(steps, 1):
        what = step.get("what", "")
        if "go" in step or "go_js" in step:
            url = step["go"] if "go" in step else page.js(step["go_js"])
            if not url:
                return f"step {n}: {step['go_js']} gave no URL"
            page.call("Page.navigate", url=url)
            ok, _ = page.wait(f"document.readyState === 'complete' && location.href.startsWith({json.dumps(url.split('?')[0])})", 30)
            if not ok:
                return f"step {n}: {url} did not load in 30 s"
            print(f"ok {n}: loaded {page.js('location.pathname')}")
        elif "fill" in step:
            sel = json.dumps(step["fill"])
            if not page.js(f"(() => {{ const e = document.querySelector({sel}); if (!e) return false; "
                           f"e.value = {json.dumps(step['value'])}; return true; }})()"):
                return f"step {n}: no element {step['fill']} to fill"
            print(f"ok {n}: filled {step['fill']}")
        elif "click" in step:
            sel = json.dumps(step["click"])
            if not page.js(f"(() => {{ const e = document.querySelector({sel}); if (!e) return false; e.click(); return true; }})()"):
                return f"step {n}: no element {step['click']} to click"
            print(f"ok {n}: clicked {step['click']}")
        elif "wait" in step:
            ok, last = page.wait(step["wait"], step.get("timeout", 20))
            if not ok:
                return f"step {n}: waited {step.get('timeout', 20)} s for {what or step['wait']} (last value: {last!r})"
            print(f"ok {n}: {what or step['wait']}")
        elif "check" in step:
            value = page.js(step["check"])
            if not value:
                return f"step {n}: {what or step['check']} is not so (value: {value!r})"
            print(f"ok {n}: {what or step['check']}")
        elif "eval" in step:
            page.js(step["eval"])
        elif "size" in step:
            if step["size"]:
                w, h = step["size"]
                page.call("Emulation.setDeviceMetricsOverride", width=w, height=h, deviceScaleFactor=1, mobile=w < 600)
                time.sleep(0.3)
            else:
                page.call("Emulation.clearDeviceMetricsOverride")
            print(f"ok {n}: size {step['size']}")
        elif "touch" in step:
            with open(step["touch"], "w") as f:
                f.write("reached\n")
        elif "shot" in step:
            w, h = step.get("width", 1280), step.get("height", 800)
            page.call("Emulation.setDeviceMetricsOverride", width=w, height=h, deviceScaleFactor=1, mobile=w < 600)
            time.sleep(0.3)  # a resize relayouts (and redraws the chart)
            png = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
            path = os.path.join(out, step["shot"] + ".png")
            with open(path, "wb") as f:
                f.write(png)
            page.call("Emulation.clearDeviceMetricsOverride")
            print(f"ok {n}: screenshot {path} ({w}x{h}, {len(png)} bytes)")
        else:
            return f"step {n}: unknown step {step}"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    ap.add_argument("--out", required=True)
    ap.add_argument("script")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    steps = json.load(open(a.script))
    profile = tempfile.mkdtemp(prefix="fleet-chromium-")
    proc = None
    try:
        proc, ws_url = start_browser(a.chromium, profile)
        page = Page(ws_url)
        failure = run(page, steps, a.out)
        if failure:
            print("FAIL " + failure)
            try:
                print("  at " + str(page.js("location.href")))
                print("  page text: " + str(page.js("document.body ? document.body.innerText.slice(0, 1500) : ''")))
            except Exception as e:  # the report of a failure must not hide it
                print(f"  (page unreadable: {e})")
            return 1
        return 0
    except Exception as e:
        print(f"FAIL {type(e).__name__}: {e}")
        return 1
    finally:
        if proc:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
