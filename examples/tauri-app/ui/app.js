// Silmari Writer's chat screen. No framework, no bundler: Tauri's global
// API (`withGlobalTauri`) for commands and events, and the DOM.
//
// Everything shown comes from the store through a command; nothing is
// kept that the store does not hold. The store's change feed arrives as the
// `store-change` event (in every window of the app, and for writes by
// other processes on the same SQLite file): each change reloads what it
// touches, a little later, so a burst (a streamed reply) costs a few
// reloads, not one per token.
'use strict';

const { invoke } = window.__TAURI__.core;
const { listen } = window.__TAURI__.event;

const $ = (id) => document.getElementById(id);

const state = {
  tab: 'active', // or 'archived'
  current: null, // the open conversation's id
  view: null, // its last ConversationView
  searchText: '',
  lastSeq: 0,
  events: 0,
};

// ---------------------------------------------------------------- helpers

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('data-')) node.setAttribute(key, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node[key] = value;
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

// The store's errors arrive as {kind, message, field?}: show the message,
// decide by the kind.
function describe(error) {
  if (error && typeof error === 'object' && 'kind' in error) {
    return `${error.kind}: ${error.message}`;
  }
  return String(error);
}

let errorTimer = null;
function showError(error) {
  const text = describe(error);
  console.error(text);
  $('error').textContent = text;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => ($('error').textContent = ''), 8000);
}

// Runs `fn` `ms` after the first of a burst of calls; calls meanwhile ride along.
const timers = {};
function schedule(name, fn, ms) {
  if (timers[name]) return;
  timers[name] = setTimeout(() => {
    timers[name] = null;
    fn().catch(showError);
  }, ms);
}

// Only the newest answer of each kind of request is rendered.
const latest = {};
async function fresh(name, promise) {
  const ticket = (latest[name] = (latest[name] || 0) + 1);
  const value = await promise;
  return ticket === latest[name] ? { value } : null;
}

function timeOf(rfc3339) {
  const date = new Date(rfc3339);
  return date.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' });
}

// A snippet's highlights are byte ranges of its UTF-8 text: cut the bytes,
// decode each piece, and put the matched ones in <mark> (as text, never markup).
function snippetNodes(snippet) {
  const bytes = new TextEncoder().encode(snippet.text);
  const decode = (from, to) => new TextDecoder().decode(bytes.slice(from, to));
  const nodes = [];
  let at = 0;
  for (const range of snippet.highlights) {
    if (range.start > at) nodes.push(document.createTextNode(decode(at, range.start)));
    nodes.push(el('mark', { text: decode(range.start, range.end) }));
    at = range.end;
  }
  if (at < bytes.length) nodes.push(document.createTextNode(decode(at, bytes.length)));
  if (snippet.offset > 0) nodes.unshift(document.createTextNode('…'));
  if (snippet.truncated) nodes.push(document.createTextNode('…'));
  return nodes;
}

// ---------------------------------------------------------------- sidebar

async function loadList() {
  const answer = await fresh('list', invoke('list_conversations', { archived: state.tab === 'archived' }));
  if (!answer) return;
  const items = answer.value;
  const list = $('conversation-list');
  list.replaceChildren(
    ...items.map((c) => {
      const archived = c.archived_at != null;
      return el(
        'li',
        {
          class: 'conversation-item' + (c.id === state.current ? ' selected' : ''),
          'data-id': c.id,
          'data-archived': String(archived),
        },
        el(
          'button',
          { type: 'button', class: 'open', title: `Updated ${timeOf(c.updated_at)}`, onclick: () => openConversation(c.id) },
          el('span', { class: 'clip' }, el('span', { class: 'title', text: c.title || 'Untitled' })),
          el('small', { class: 'count', text: `${c.message_count} message${c.message_count === 1 ? '' : 's'}` }),
        ),
        el('button', {
          type: 'button',
          class: 'archive-toggle',
          title: archived ? 'Take out of the archive' : 'Archive',
          text: archived ? 'Unarchive' : 'Archive',
          onclick: () => setArchived(c.id, !archived),
        }),
      );
    }),
  );
  $('list-empty').hidden = items.length > 0;
  list.dataset.count = String(items.length);
}

function selectTab(tab) {
  state.tab = tab;
  $('tab-active').classList.toggle('active', tab === 'active');
  $('tab-archived').classList.toggle('active', tab === 'archived');
  loadList().catch(showError);
}

async function setArchived(id, archived) {
  try {
    await invoke('set_archived', { id, archived });
    await Promise.all([loadList(), id === state.current ? loadView() : null]);
  } catch (e) {
    showError(e);
  }
}

// ---------------------------------------------------------------- search

async function runSearch() {
  const text = state.searchText;
  const panel = $('search-panel');
  if (!text) {
    panel.hidden = true;
    $('search-results').replaceChildren();
    return;
  }
  panel.hidden = false;
  let hits;
  try {
    const answer = await fresh('search', invoke('search', { text }));
    if (!answer) return;
    hits = answer.value;
  } catch (e) {
    // A query with nothing to find is `invalid_input` naming `query`.
    $('search-summary').textContent = e && e.kind === 'invalid_input' ? e.message : describe(e);
    $('search-results').replaceChildren();
    panel.dataset.state = 'error';
    return;
  }
  $('search-summary').textContent = `${hits.length} hit${hits.length === 1 ? '' : 's'} for ${text}`;
  $('search-results').replaceChildren(
    ...hits.map((hit) =>
      el(
        'li',
        {
          class: 'hit',
          'data-conversation': hit.conversation.id,
          'data-message': hit.message ? hit.message.id : '',
          onclick: () => openConversation(hit.conversation.id),
        },
        el(
          'div',
          { class: 'hit-head' },
          el('span', { class: 'clip' }, el('span', { class: 'hit-title', text: hit.conversation.title || 'Untitled' })),
          el('small', { class: 'hit-where', text: hit.message ? hit.message.role : 'title' }),
        ),
        el('div', { class: 'hit-snippet' }, ...snippetNodes(hit.snippet)),
      ),
    ),
  );
  panel.dataset.state = 'done';
  panel.dataset.count = String(hits.length);
}

// ---------------------------------------------------------------- conversation

async function openConversation(id) {
  state.current = id;
  state.view = null;
  for (const item of document.querySelectorAll('.conversation-item')) {
    item.classList.toggle('selected', item.dataset.id === id);
  }
  await loadView().catch(showError);
  $('message-input').focus();
}

async function loadView() {
  const id = state.current;
  if (!id) return renderView(null);
  const answer = await fresh('view', invoke('conversation_view', { id }));
  if (!answer || id !== state.current) return;
  renderView(answer.value);
}

function renderView(view) {
  state.view = view;
  $('empty-state').hidden = !!view;
  $('conversation-pane').hidden = !view;
  if (!view) {
    if (state.current) $('empty-state').textContent = 'That conversation is gone.';
    state.current = null;
    return;
  }
  const c = view.conversation;
  const archived = c.archived_at != null;
  const pane = $('conversation-pane');
  pane.dataset.id = c.id;
  pane.dataset.archived = String(archived);
  $('conversation-title').textContent = c.title || 'Untitled';
  $('conversation-meta').textContent =
    `${c.message_count} message${c.message_count === 1 ? '' : 's'} in all branches · updated ${timeOf(c.updated_at)}`;
  $('archived-badge').hidden = !archived;
  $('archive-button').textContent = archived ? 'Unarchive' : 'Archive';

  const list = $('messages');
  const stickToBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...view.messages.map(renderMessage));
  list.dataset.count = String(view.messages.length);
  list.dataset.streaming = String(view.messages.some((m) => m.streaming));
  if (stickToBottom) list.scrollTop = list.scrollHeight;
}

function renderMessage(m) {
  const isReply = m.role === 'assistant';
  const tools = el('div', { class: 'tools' });
  if (m.alternatives > 1) {
    tools.append(
      el(
        'span',
        { class: 'branch' },
        el('button', {
          type: 'button',
          class: 'prev',
          title: 'Previous alternative',
          text: '‹',
          disabled: m.alternative <= 1,
          onclick: () => switchAlternative(m.id, -1),
        }),
        el('span', { class: 'branch-position', text: `${m.alternative} / ${m.alternatives}` }),
        el('button', {
          type: 'button',
          class: 'next',
          title: 'Next alternative',
          text: '›',
          disabled: m.alternative >= m.alternatives,
          onclick: () => switchAlternative(m.id, 1),
        }),
      ),
    );
  }
  if (isReply) {
    tools.append(
      el('button', {
        type: 'button',
        class: 'regenerate',
        text: 'Regenerate',
        disabled: m.streaming,
        onclick: () => regenerate(m.id),
      }),
    );
  }
  tools.append(el('time', { text: timeOf(m.created_at) }));
  return el(
    'li',
    {
      class: `message role-${m.role}` + (m.streaming ? ' streaming' : ''),
      'data-id': m.id,
      'data-role': m.role,
      'data-streaming': String(m.streaming),
    },
    el('div', { class: 'who', text: { user: 'You', assistant: 'Assistant', system: 'System', tool: 'Tool' }[m.role] || m.role }),
    el('div', { class: 'content', text: m.content }),
    tools,
  );
}

async function switchAlternative(messageId, step) {
  try {
    renderView(await invoke('switch_alternative', { message_id: messageId, step }));
  } catch (e) {
    showError(e);
  }
}

async function regenerate(messageId) {
  try {
    await invoke('regenerate', { message_id: messageId });
    await loadView();
  } catch (e) {
    showError(e);
  }
}

async function send() {
  const input = $('message-input');
  const text = input.value;
  if (!state.current || !text.trim()) return;
  $('send-button').disabled = true;
  try {
    await invoke('send_message', { conversation_id: state.current, text });
    input.value = '';
    await loadView();
  } catch (e) {
    showError(e);
  } finally {
    $('send-button').disabled = false;
  }
}

// ---------------------------------------------------------------- change feed

function onStoreChange(event) {
  const change = event.payload;
  state.events += 1;
  document.body.dataset.events = String(state.events);
  if (change.type === 'change') {
    state.lastSeq = change.seq;
    document.body.dataset.lastSeq = String(change.seq);
    const touchesCurrent = state.current && change.conversation_id === state.current;
    if (change.entity === 'conversation') {
      schedule('list', loadList, 80);
    } else if (change.entity === 'message') {
      schedule('list', loadList, 250); // message counts
    }
    if (touchesCurrent) schedule('view', loadView, 30);
    if (state.searchText && change.entity !== 'file') schedule('search', runSearch, 300);
    $('feed-status').textContent = `live · change ${change.seq}`;
  } else {
    // `lagged` or `resync`: some changes were not seen; reload everything.
    $('feed-status').textContent = `live · reloaded (${change.type})`;
    reloadAll().catch(showError);
  }
}

async function reloadAll() {
  await Promise.all([loadList(), loadView(), runSearch()]);
}

// ---------------------------------------------------------------- start

function wire() {
  $('new-conversation-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('new-title');
    try {
      const created = await invoke('create_conversation', { title: input.value });
      input.value = '';
      if (state.tab !== 'active') selectTab('active');
      state.current = created.id;
      await Promise.all([loadList(), openConversation(created.id)]);
    } catch (err) {
      showError(err);
    }
  });
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    send();
  });
  $('message-input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  let searchTimer = null;
  $('search').addEventListener('input', (e) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.searchText = e.target.value.trim();
      runSearch().catch(showError);
    }, 250);
  });
  $('clear-search').addEventListener('click', () => {
    $('search').value = '';
    state.searchText = '';
    runSearch().catch(showError);
  });
  $('tab-active').addEventListener('click', () => selectTab('active'));
  $('tab-archived').addEventListener('click', () => selectTab('archived'));
  $('archive-button').addEventListener('click', () => {
    if (state.view) setArchived(state.view.conversation.id, state.view.conversation.archived_at == null);
  });
  $('new-window').addEventListener('click', () => invoke('new_window').catch(showError));
}

async function start() {
  wire();
  // Listen first, then load: a change between the two is not lost.
  await listen('store-change', onStoreChange);
  $('feed-status').textContent = 'live';
  const info = await invoke('app_info');
  $('window-label').textContent = info.window;
  document.body.dataset.window = info.window;
  $('database').textContent = info.database;
  document.title = `Silmari Writer — ${info.window}`;
  await loadList();
  document.body.dataset.ready = 'true';
}

start().catch(showError);
