"""A W3C WebDriver client over plain HTTP (standard library only), for
smoke/drive.py: sessions, elements, scripts, screenshots, and a retry of a
request tauri-driver dropped."""

import base64
import http.client
import json
import time
import urllib.error
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class WebDriverError(Exception):
    def __init__(self, status, error, message):
        super().__init__(f"{status} {error}: {message}")
        self.error = error


class Session:
    """A W3C WebDriver session over plain HTTP."""

    def __init__(self, base, capabilities, trace=None):
        self.base = base.rstrip("/")
        self.trace = trace
        value = self._call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}}, timeout=120)
        self.id = value["sessionId"]
        self.prefix = f"/session/{self.id}"

    def _call(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            if self.trace:
                self.trace.write(f"{time.strftime('%H:%M:%S')} {method} {path} {data[:200] if data else ''}\n")
                self.trace.flush()
            request = urllib.request.Request(self.base + path, data=data, method=method)
            request.add_header("Content-Type", "application/json; charset=utf-8")
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    payload = json.loads(response.read() or b"{}")
                return payload.get("value")
            except urllib.error.HTTPError as e:
                raw = e.read()
                try:
                    value = json.loads(raw).get("value", {})
                except ValueError:
                    value = {"error": "unknown", "message": raw.decode(errors="replace")}
                raise WebDriverError(e.code, value.get("error"), value.get("message")) from None
            except (http.client.RemoteDisconnected, ConnectionResetError) as e:
                # tauri-driver forwards each request on a kept-alive
                # connection to WebKitWebDriver, which may have closed it
                # meanwhile: tauri-driver then drops ours without an answer,
                # and the request never reached WebKitWebDriver. Once more.
                if attempt == 2:
                    raise
                if self.trace:
                    self.trace.write(f"    ({e}: sent again)\n")

    def call(self, method, path, body=None, timeout=30):
        return self._call(method, self.prefix + path, body, timeout)

    def quit(self):
        try:
            self._call("DELETE", self.prefix, timeout=20)
        except Exception as e:  # the app may be gone already
            log(f"deleting the session: {e}")

    # windows
    def handles(self):
        return self.call("GET", "/window/handles")

    def switch(self, handle):
        self.call("POST", "/window", {"handle": handle})

    # elements
    def find(self, css):
        return self.call("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def find_all(self, css):
        return [e[ELEMENT] for e in self.call("POST", "/elements", {"using": "css selector", "value": css})]

    def find_in(self, element, css):
        return self.call("POST", f"/element/{element}/element", {"using": "css selector", "value": css})[ELEMENT]

    def click(self, css):
        self.call("POST", f"/element/{self.find(css)}/click", {})

    def click_element(self, element):
        self.call("POST", f"/element/{element}/click", {})

    def type(self, css, text):
        element = self.find(css)
        self.call("POST", f"/element/{element}/clear", {})
        self.call("POST", f"/element/{element}/value", {"text": text})

    def text(self, css):
        return self.call("GET", f"/element/{self.find(css)}/text")

    def element_text(self, element):
        return self.call("GET", f"/element/{element}/text")

    def texts(self, css):
        return [self.element_text(e) for e in self.find_all(css)]

    def script(self, source, *args):
        return self.call("POST", "/execute/sync", {"script": source, "args": list(args)})

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.call("GET", "/screenshot", timeout=60)))
