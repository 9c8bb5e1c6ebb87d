"""The harness of smoke/drive.py: the app started through tauri-driver on a
fresh database, windows by label, checks that count, waits, screenshots,
and the database read with the `silmari` tool and sqlite3."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from webdriver import Session, WebDriverError, log


class Failure(Exception):
    """A check that failed. `counted`: already added to the failures."""

    def __init__(self, message, counted=False):
        super().__init__(message)
        self.counted = counted




# ---------------------------------------------------------------- the run


class Harness:
    def __init__(self):
        self.app = os.environ["SILMARI_SMOKE_APP"]
        self.silmari = os.environ["SILMARI_SMOKE_SILMARI"]
        self.out = os.path.abspath(os.environ["SILMARI_SMOKE_DIR"])
        self.driver_bin = os.environ.get("SILMARI_SMOKE_DRIVER") or shutil.which("tauri-driver")
        self.port = int(os.environ.get("SILMARI_SMOKE_PORT", "4444"))
        self.passed = 0
        self.failed = 0
        self.shots = 0
        self.windows = {}  # label -> handle
        self.current = None
        self.session = None
        self.driver = None
        os.makedirs(self.out, exist_ok=True)
        self.db_path = os.path.join(self.out, "db", "writer.db")
        self.url = "sqlite:///" + self.db_path  # sqlite:////abs/path
        nonce = uuid.uuid4().hex[:6]
        self.title = f"Harbour notes {nonce}"
        self.prompt = "Tell me about the storm over the harbour"
        self.imported_title = f"Imported from the terminal {nonce}"

    # ------------------------------------------------------------ checks

    def check(self, what, condition, detail=""):
        if not condition:
            self.failed += 1
            raise Failure(f"{what}: {detail}" if detail else what, counted=True)
        self.passed += 1
        log(f"ok   {what}")

    def wait(self, what, probe, timeout=15.0, interval=0.1):
        """Polls `probe` until it returns a truthy value; that is a passed check."""
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        last = None
        while True:
            try:
                value = probe()
                last = value
            except WebDriverError as e:
                if e.error == "invalid session id":
                    raise
                value, last = None, f"<{e}>"
            if value:
                self.passed += 1
                log(f"ok   {what} ({time.monotonic() - started:.2f} s)")
                return value
            if time.monotonic() > deadline:
                self.failed += 1
                raise Failure(f"{what}: not within {timeout:.0f} s (last seen: {last!r})", counted=True)
            time.sleep(interval)

    # ------------------------------------------------------------ windows

    def use(self, label):
        if self.current != label:
            self.session.switch(self.windows[label])
            self.current = label

    def shot(self, name):
        """One screenshot per window (WebDriver) and one of the whole screen."""
        self.shots += 1
        stem = f"{self.shots:02d}-{name}"
        was = self.current
        for label in sorted(self.windows):
            self.use(label)
            path = os.path.join(self.out, f"{stem}-{label}.png")
            self.session.screenshot(path)
            self.check(f"screenshot {os.path.basename(path)}", os.path.getsize(path) > 1000)
        path = os.path.join(self.out, f"{stem}-screen.png")
        subprocess.run(["import", "-window", "root", path], check=True, timeout=30)
        self.check(f"screenshot {os.path.basename(path)}", os.path.getsize(path) > 1000)
        if was:
            self.use(was)

    def list_titles(self, label):
        self.use(label)
        return self.session.texts("#conversation-list .conversation-item .title")

    def titles_contain(self, label, title):
        return title in self.list_titles(label)

    def titles_lack(self, label, title):
        return title not in self.list_titles(label)

    def open_in(self, label, title):
        """Clicks the conversation titled `title` in `label`'s list (again if
        the list was redrawn under the click)."""

        def click():
            self.use(label)
            for item in self.session.find_all("#conversation-list .conversation-item"):
                if self.session.element_text(self.session.find_in(item, ".title")) == title:
                    self.session.click_element(self.session.find_in(item, ".open"))
                    return True
            return False

        self.wait(f"{label}: clicked {title!r} in the list", click, 5)

    def shown_title(self, label):
        self.use(label)
        return self.session.text("#conversation-title")

    def messages(self, label):
        """(role, text, streaming, branch position) of each message shown."""
        self.use(label)
        return [
            tuple(row)
            for row in self.session.script(
                """return Array.from(document.querySelectorAll('#messages .message')).map(m => [
                     m.dataset.role,
                     m.querySelector('.content').textContent,
                     m.dataset.streaming === 'true',
                     (m.querySelector('.branch-position') || {}).textContent || '']);"""
            )
        ]

    # ------------------------------------------------------------ the database

    def silmari_tool(self, *args, timeout=60):
        done = subprocess.run(
            [self.silmari, "--url", self.url, *args], capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise Failure(f"silmari {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def sql(self, query, *params):
        """Rows of `query` (`?` bound to `params`, quoted) by Debian's sqlite3
        CLI, read-only, beside the running app (WAL: readers never block it)."""
        for param in params:
            query = query.replace("?", "'" + str(param).replace("'", "''") + "'", 1)
        done = subprocess.run(
            ["sqlite3", "-readonly", "-json", self.db_path, query], capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            raise Failure(f"sqlite3 {query!r} failed: {done.stderr.strip()}")
        return [tuple(row.values()) for row in json.loads(done.stdout or "[]")]

    def listed(self, *flags):
        """`silmari list` rows as dicts."""
        out = self.silmari_tool("list", "--all", *flags)
        lines = out.splitlines()
        rows = []
        for line in lines[1:]:
            parts = line.split(None, 6)
            # ID, date, time, MESSAGES, BRANCHES, STATUS, TITLE
            if len(parts) == 7 and len(parts[0]) == 36:
                rows.append(
                    {
                        "id": parts[0],
                        "messages": int(parts[3]),
                        "branches": int(parts[4]),
                        "status": parts[5],
                        "title": parts[6],
                    }
                )
        return rows

    def row_titled(self, title, *flags):
        return next((r for r in self.listed(*flags) if r["title"] == title), None)

    # ------------------------------------------------------------ start and stop

    def start(self):
        if not self.driver_bin:
            raise Failure("tauri-driver is not on PATH")
        for port in (self.port, self.port + 1):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    raise Failure(f"port {port} is taken (set SILMARI_SMOKE_PORT)")
        shutil.rmtree(os.path.dirname(self.db_path), ignore_errors=True)
        os.makedirs(os.path.dirname(self.db_path))
        env = dict(os.environ)
        env.update(
            {
                "SILMARI_APP_DB": self.url,
                "SILMARI_APP_WINDOWS": "2",
                # slow enough that a person (and this test) sees the reply grow
                "SILMARI_APP_TOKEN_DELAY_MS": "120",
                "NO_AT_BRIDGE": "1",
            }
        )
        self.driver_log = open(os.path.join(self.out, "tauri-driver.log"), "w")
        log(f"starting {self.driver_bin} on port {self.port}; the app on {self.url}")
        self.driver = subprocess.Popen(
            [self.driver_bin, "--port", str(self.port), "--native-port", str(self.port + 1)],
            env=env,
            stdout=self.driver_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{self.port}"

        def up():
            try:
                with urllib.request.urlopen(base + "/status", timeout=2) as r:
                    return r.status == 200
            except Exception:
                if self.driver.poll() is not None:
                    raise Failure(f"tauri-driver exited with {self.driver.returncode}; see tauri-driver.log")
                return False

        self.wait("tauri-driver answers", up, timeout=20, interval=0.2)
        self.trace = open(os.path.join(self.out, "webdriver.log"), "w")
        self.session = Session(
            base, {"browserName": "wry", "tauri:options": {"application": self.app, "args": []}}, self.trace
        )
        self.check("a WebDriver session on the app", bool(self.session.id))

    def stop(self):
        if self.session:
            self.session.quit()
        if self.driver and self.driver.poll() is None:
            os.killpg(self.driver.pid, signal.SIGTERM)
            try:
                self.driver.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.driver.pid, signal.SIGKILL)
        # the app (started by WebKitWebDriver) should be gone with its session
        if self.driver:
            self.driver_log.close()

    # ------------------------------------------------------------ steps
