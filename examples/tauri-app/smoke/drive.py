#!/usr/bin/env python3
"""Drives the Silmari Writer Tauri app in a real window, as a person would.

Started by `smoke/run` (which installs, builds, and starts Xvfb); standard
library only. It starts tauri-driver (WebDriver in front of WebKitWebDriver),
which starts the app on a fresh SQLite file with two windows ("main" and
"second") of one process. Each step acts in the main window, then checks
what both windows show (DOM text through WebDriver), and what the database
holds (the `silmari` admin tool and the sqlite3 CLI); a screenshot of each
window (WebDriver) and of the whole screen (ImageMagick `import`) is kept
per step. A `silmari import` run from outside the app, on the same file,
must show in both windows within a few seconds.

Environment (set by smoke/run):
  SILMARI_SMOKE_APP      the app's binary
  SILMARI_SMOKE_SILMARI  the `silmari` admin tool's binary
  SILMARI_SMOKE_DIR      where screenshots, logs and the database go
  SILMARI_SMOKE_DRIVER   tauri-driver (default: on PATH)
  SILMARI_SMOKE_PORT     tauri-driver's port (default 4444; native: port + 1)
  DISPLAY                the X server (Xvfb)

Exits 0 only when every check passed; prints `smoke: N passed, M failed`.
"""

import json
import os
import subprocess
import sys
import time
import uuid

from harness import Failure, Harness
from webdriver import WebDriverError, log


# The canned replies of src/reply.rs, in the order "regenerate" goes through them.
REPLIES = [
    "Rain hammered the harbour while you wrote “{prompt}”. The lighthouse keeper lit the lamp and waited for the storm to pass.",
    "A second take on “{prompt}”: the storm came at dawn, and the letter never arrived.",
    "Once more, on “{prompt}”: the gulls went quiet before the thunder rolled in.",
]


def canned(prompt, attempt):
    short = " ".join(prompt.split())
    if len(short) > 60:
        short = short[:59] + "…"
    return REPLIES[(attempt - 1) % len(REPLIES)].replace("{prompt}", short)



class Smoke(Harness):
    """The steps, in order, each acting in the main window and checking both."""

    def step_windows(self):
        handles = self.wait("two windows of one app", lambda: (h := self.session.handles()) and len(h) >= 2 and h, 30)
        self.check("exactly two windows", len(handles) == 2, f"{handles}")
        for handle in handles:
            self.session.switch(handle)
            label = self.wait(
                f"window {handle} ready",
                lambda: self.session.script("return document.body.dataset.ready === 'true' && document.body.dataset.window"),
                30,
            )
            self.windows[label] = handle
            self.current = label
        self.check("windows main and second", sorted(self.windows) == ["main", "second"], f"{sorted(self.windows)}")
        for label in self.windows:
            self.use(label)
            self.check(f"{label}: its label shows", self.session.text("#window-label") == label)
            database = self.session.text("#database")
            self.check(f"{label}: the store is the test's file", self.db_path in database, database)
            self.check(f"{label}: the list starts empty", self.list_titles(label) == [])
        self.check("the database file exists", os.path.exists(self.db_path))
        self.check("the database starts empty", self.sql("SELECT count(*) FROM conversations") == [(0,)])
        self.shot("start")

    def step_create(self):
        self.use("main")
        self.session.type("#new-title", self.title)
        self.session.click("#create-conversation")
        self.wait("main: the new conversation is listed", lambda: self.titles_contain("main", self.title))
        self.wait("main: it is open", lambda: self.shown_title("main") == self.title)
        self.wait("second: it is listed there too", lambda: self.titles_contain("second", self.title), 5)
        row = self.row_titled(self.title)
        self.check("db: silmari list has it, active, no messages", row and row["status"] == "active" and row["messages"] == 0, f"{row}")
        self.conversation_id = row["id"]
        rows = self.sql("SELECT id, title, archived_at FROM conversations")
        self.check("db: sqlite3 sees the same row", rows == [(self.conversation_id, self.title, None)], f"{rows}")
        self.open_in("second", self.title)
        self.wait("second: opened it too", lambda: self.shown_title("second") == self.title)
        self.shot("created")

    def step_send(self):
        expected = canned(self.prompt, 1)
        self.use("main")
        self.session.type("#message-input", self.prompt)
        self.session.click("#send-button")
        partial_seen = []
        deadline = time.monotonic() + 30
        shot_taken = False
        while True:
            shown = self.messages("main")
            replies = [m for m in shown if m[0] == "assistant"]
            if replies:
                text, streaming = replies[-1][1], replies[-1][2]
                if streaming and text and text != expected and expected.startswith(text):
                    partial_seen.append(text)
                    if not shot_taken and len(text) > 20:
                        shot_taken = True
                        self.shot("streaming")
                if not streaming and text == expected:
                    break
            if time.monotonic() > deadline:
                self.failed += 1
                raise Failure(f"main: the streamed reply did not complete (shown: {shown!r})", counted=True)
            time.sleep(0.05)
        self.passed += 1
        log("ok   main: the reply is complete")
        self.check(
            "main: the reply was seen growing (a strict prefix, then more)",
            len(set(partial_seen)) >= 2,
            f"partial texts seen: {partial_seen[:5]!r}",
        )
        self.check("main: user message, then the reply", [m[:2] for m in self.messages("main")] == [("user", self.prompt), ("assistant", expected)])
        self.wait(
            "second: shows the same two messages, the reply complete",
            lambda: [m[:3] for m in self.messages("second")] == [("user", self.prompt, False), ("assistant", expected, False)],
            5,
        )
        shown = self.silmari_tool("show", self.conversation_id, "--full")
        self.check("db: silmari show has the prompt and the whole reply", self.prompt in shown and expected in shown, shown)
        rows = self.sql("SELECT role, content FROM messages WHERE conversation_id = ? ORDER BY position", self.conversation_id)
        self.check("db: sqlite3 has the two messages", [tuple(r) for r in rows] == [("user", self.prompt), ("assistant", expected)], f"{rows}")
        self.shot("replied")

    def step_branches(self):
        first, second = canned(self.prompt, 1), canned(self.prompt, 2)
        self.use("main")
        self.session.click("#messages .message[data-role='assistant'] .regenerate")
        self.wait(
            "main: a second reply, 2 / 2, complete",
            lambda: self.messages("main")[-1] == ("assistant", second, False, "2 / 2"),
            30,
        )
        self.wait("second: follows to 2 / 2", lambda: self.messages("second")[-1] == ("assistant", second, False, "2 / 2"), 5)
        self.use("main")
        self.session.click("#messages .message[data-role='assistant'] .branch .prev")
        self.wait("main: back to 1 / 2, the first reply", lambda: self.messages("main")[-1] == ("assistant", first, False, "1 / 2"))
        self.wait("second: follows to 1 / 2", lambda: self.messages("second")[-1] == ("assistant", first, False, "1 / 2"), 5)
        shown = self.silmari_tool("show", self.conversation_id, "--full")
        lines = shown.splitlines()
        current_first = [l for l in lines if "[1/2]" in l and first in l]
        other = [l for l in lines if "[2/2]" in l and second in l]
        self.check("db: silmari show has both replies as [1/2] and [2/2]", current_first and other, shown)
        self.check("db: the first reply is on the current branch (*)", current_first[0].lstrip().startswith("*") and not other[0].lstrip().startswith("*"), shown)
        row = self.row_titled(self.title)
        self.check("db: 3 messages, 2 branches", row and row["messages"] == 3 and row["branches"] == 2, f"{row}")
        self.shot("branches")

    def step_search(self):
        self.use("main")
        self.session.type("#search", "lighthouse")
        hits = self.wait(
            "main: search finds the reply",
            lambda: [
                h
                for h in self.session.script(
                    """return Array.from(document.querySelectorAll('#search-results .hit')).map(h => [
                         h.querySelector('.hit-title').textContent,
                         h.querySelector('.hit-where').textContent,
                         h.querySelector('.hit-snippet').textContent,
                         Array.from(h.querySelectorAll('mark')).map(m => m.textContent)]);"""
                )
                if h[0] == self.title
            ],
            10,
        )
        title, where, snippet, marks = hits[0]
        self.check("main: the hit is the assistant's reply", where == "assistant", f"{hits}")
        self.check("main: the match is marked", marks == ["lighthouse"], f"{marks}")
        self.check("main: the snippet is the reply's text", "lighthouse keeper lit the lamp" in snippet, snippet)
        self.check("main: the panel says 1 hit", self.session.text("#search-summary").startswith("1 hit"), self.session.text("#search-summary"))
        found = json.loads(self.silmari_tool("search", "lighthouse", "--json"))
        text = json.dumps(found)
        self.check("db: silmari search finds it in that conversation", self.conversation_id in text, text[:400])
        self.session.type("#search", "-storm")
        self.wait(
            "main: a query with only an excluded term says why",
            lambda: "query" in self.session.text("#search-summary"),
            5,
        )
        self.session.type("#search", "harb*")
        self.wait("main: a prefix search finds it too", lambda: self.title in self.session.texts("#search-results .hit-title"), 10)
        self.shot("search")
        self.session.click("#clear-search")

    def step_archive(self):
        self.use("main")
        self.session.click("#archive-button")
        self.wait("main: out of the conversation list", lambda: self.titles_lack("main", self.title))
        self.use("main")
        self.wait("main: the open conversation says Archived", lambda: self.session.script("return !document.getElementById('archived-badge').hidden"))
        self.wait("second: out of its list too", lambda: self.titles_lack("second", self.title), 5)
        self.use("second")
        self.wait("second: its open conversation says Archived", lambda: self.session.script("return !document.getElementById('archived-badge').hidden"), 5)
        row = self.row_titled(self.title, "--archived")
        self.check("db: silmari list --archived has it", row is not None and row["status"] == "archived", f"{row}")
        self.check("db: silmari list --active does not", self.row_titled(self.title, "--active") is None)
        archived_at = self.sql("SELECT archived_at FROM conversations")
        self.check("db: sqlite3 sees archived_at set", len(archived_at) == 1 and archived_at[0][0] is not None, f"{archived_at}")
        self.use("main")
        self.session.click("#tab-archived")
        self.wait("main: listed under Archived", lambda: self.titles_contain("main", self.title))
        self.shot("archived")
        self.use("main")
        self.session.click("#tab-active")
        self.wait("main: back on the active list (empty)", lambda: self.list_titles("main") == [])

    def step_import(self):
        conversation = str(uuid.uuid4())
        user, reply = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        records = [
            {"kind": "header", "format": "silmari-store", "version": 2},
            {
                "kind": "conversation",
                "id": conversation,
                "title": self.imported_title,
                "created_at": stamp,
                "updated_at": stamp,
                "archived_at": None,
                "metadata": {"source": "smoke"},
            },
            {
                "kind": "message",
                "id": user,
                "conversation_id": conversation,
                "role": "user",
                "content": "Where did the letter go?",
                "created_at": stamp,
                "attachments": [],
                "parent_id": None,
                "metadata": {},
                "on_current_branch": True,
            },
            {
                "kind": "message",
                "id": reply,
                "conversation_id": conversation,
                "role": "assistant",
                "content": "It was carried out to sea by the tide.",
                "created_at": stamp,
                "attachments": [],
                "parent_id": user,
                "metadata": {"model": "by hand"},
                "on_current_branch": True,
            },
        ]
        self.use("second")
        events_before = int(self.session.script("return document.body.dataset.events || '0'"))
        path = os.path.join(self.out, "import.jsonl")
        with open(path, "w") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        started = time.monotonic()
        done = subprocess.run(
            [self.silmari, "--url", self.url, "import", path, "--merge"], capture_output=True, text=True, timeout=60
        )
        self.check("silmari import (another process) succeeds", done.returncode == 0, done.stderr.strip() + done.stdout.strip())
        imported = time.monotonic()
        log(f"     silmari import took {imported - started:.2f} s")
        self.wait("main: the imported conversation shows", lambda: self.titles_contain("main", self.imported_title), 5)
        main_after = time.monotonic() - imported
        self.wait("second: it shows there too", lambda: self.titles_contain("second", self.imported_title), 5)
        log(f"     seen in main {main_after:.2f} s after the import ended")
        self.use("second")
        events_after = int(self.session.script("return document.body.dataset.events || '0'"))
        self.check(
            "second: store-change events arrived for the import",
            events_after > events_before,
            f"{events_before} before, {events_after} after",
        )
        self.open_in("main", self.imported_title)
        self.wait(
            "main: its messages are the file's",
            lambda: [m[:2] for m in self.messages("main")]
            == [("user", "Where did the letter go?"), ("assistant", "It was carried out to sea by the tide.")],
        )
        row = self.row_titled(self.imported_title)
        self.check("db: silmari list has it, 2 messages", row and row["messages"] == 2 and row["id"] == conversation, f"{row}")
        self.shot("imported")

    def step_new_window(self):
        self.use("main")
        self.session.click("#new-window")
        handles = self.wait("a third window opens (New window)", lambda: (h := self.session.handles()) and len(h) == 3 and h, 15)
        handle = next(h for h in handles if h not in self.windows.values())
        self.session.switch(handle)
        self.current = None
        label = self.wait(
            "the third window is ready",
            lambda: self.session.script("return document.body.dataset.ready === 'true' && document.body.dataset.window"),
            20,
        )
        self.check("the third window is labelled window-3", label == "window-3", label)
        titles = self.session.texts("#conversation-list .conversation-item .title")
        self.check("the third window lists the imported conversation", titles == [self.imported_title], f"{titles}")

    def run(self):
        steps = [
            self.step_windows,
            self.step_create,
            self.step_send,
            self.step_branches,
            self.step_search,
            self.step_archive,
            self.step_import,
            self.step_new_window,
        ]
        try:
            self.start()
            for step in steps:
                log(f"== {step.__name__[5:]}")
                step()
        except (Failure, WebDriverError, subprocess.SubprocessError, OSError, KeyError) as e:
            if not getattr(e, "counted", False):
                self.failed += 1
            log(f"FAIL {e}")
            try:
                if self.session and self.windows:
                    self.shot("failure")
            except Exception as shot_error:
                log(f"     (no failure screenshot: {shot_error})")
        finally:
            self.stop()
        if self.failed:
            path = os.path.join(self.out, "tauri-driver.log")
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    tail = f.readlines()[-30:]
                print(f"--- the end of {path} (tauri-driver, WebKitWebDriver and the app):", flush=True)
                print("".join(tail), end="", flush=True)
        print(f"smoke: {self.passed} passed, {self.failed} failed", flush=True)
        if self.passed == 0:
            return 1
        return 1 if self.failed else 0


if __name__ == "__main__":
    sys.exit(Smoke().run())
