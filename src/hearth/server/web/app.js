// The chat page of `hearth serve`: a model picker (GET /v1/models), a conversation streamed from
// POST /v1/chat/completions (server-sent events read with fetch), Stop (aborting the fetch ends
// the generation on the server), New chat, a system prompt, and an API key kept in this browser's
// localStorage for servers started with --api-key. Model output is only ever set as textContent,
// never parsed as HTML: a reply is untrusted text.
'use strict';

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = 'hearth.apiKey';
const MODEL_STORAGE = 'hearth.model';

const ui = {
  model: $('model'), newChat: $('new-chat'), settingsToggle: $('settings-toggle'), settings: $('settings'),
  system: $('system'), temperature: $('temperature'), maxTokens: $('max-tokens'), apiKey: $('api-key'),
  status: $('status'), messages: $('messages'), empty: $('empty'), form: $('composer'), input: $('input'),
  send: $('send'), stop: $('stop'),
};

let history = [];        // the conversation sent with each request: [{role, content}]
let controller = null;   // the AbortController of the reply being streamed

function storageGet(name) {
  try { return localStorage.getItem(name) || ''; } catch { return ''; }
}
function storageSet(name, value) {
  try {
    if (value) localStorage.setItem(name, value); else localStorage.removeItem(name);
  } catch { /* storage disabled: the value lives as long as the page */ }
}

function requestHeaders() {
  const h = { 'Content-Type': 'application/json' };
  const key = ui.apiKey.value.trim();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

function showStatus(text) {
  ui.status.textContent = text;
  ui.status.hidden = false;
}
function clearStatus() {
  ui.status.textContent = '';
  ui.status.hidden = true;
}

function openSettings(open) {
  ui.settings.hidden = !open;
  ui.settingsToggle.setAttribute('aria-expanded', String(open));
}

// A readable sentence for a failed response, from the OpenAI error shape when there is one.
async function describeError(response) {
  let message = '';
  try {
    const body = await response.json();
    message = body?.error?.message ?? '';
  } catch { /* not JSON */ }
  const detail = `${response.status}${message ? `: ${message}` : ''}`;
  if (response.status === 401) {
    openSettings(true);
    return `This server needs an API key (${detail}). Enter it under Settings.`;
  }
  return `The server answered ${detail}`;
}

async function loadModels() {
  let response;
  try {
    response = await fetch('/v1/models', { headers: requestHeaders() });
  } catch (e) {
    showStatus(`Cannot reach the server: ${e.message}`);
    return;
  }
  if (!response.ok) {
    ui.model.replaceChildren();
    showStatus(await describeError(response));
    if (response.status === 401) ui.apiKey.focus();
    return;
  }
  const body = await response.json();
  const ids = (body.data ?? []).map((m) => String(m.id));
  const wanted = ui.model.value || storageGet(MODEL_STORAGE);
  ui.model.replaceChildren(...ids.map((id) => {
    const option = document.createElement('option');
    option.value = id;
    option.textContent = id;
    return option;
  }));
  if (ids.includes(wanted)) ui.model.value = wanted;
  clearStatus();
  if (ids.length === 0) showStatus('This server lists no model for this API key.');
}

function scrollToEnd() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

// A message bubble: .msg.ROLE > .text (the content, as text) [+ .note].
function addBubble(role, text) {
  ui.empty.hidden = true;
  const bubble = document.createElement('div');
  bubble.className = `msg ${role}`;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  bubble.append(body);
  ui.messages.append(bubble);
  scrollToEnd();
  return bubble;
}
function addNote(bubble, text) {
  const note = document.createElement('span');
  note.className = 'note';
  note.textContent = text;
  bubble.append(note);
}

// A server-sent event stream parser (WHATWG HTML, "Interpreting an event stream"): push()
// decoded text as it arrives; onData gets each event's data (its data: lines joined by "\n").
function sseParser(onData) {
  let buffer = '';
  let data = null;
  const line = (l) => {
    if (l === '') {
      if (data !== null) onData(data.join('\n'));
      data = null;
      return;
    }
    if (l.startsWith(':')) return;
    const colon = l.indexOf(':');
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? '' : l.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') (data ??= []).push(value);
  };
  return {
    push(text) {
      buffer += text;
      for (;;) {
        const m = /\r\n|\n|\r/.exec(buffer);
        if (!m) break;
        if (m[0] === '\r' && m.index === buffer.length - 1) break;  // "\r\n" may be split
        line(buffer.slice(0, m.index));
        buffer = buffer.slice(m.index + m[0].length);
      }
    },
    end() {
      if (buffer) line(buffer);
      buffer = '';
      line('');
    },
  };
}

function setBusy(busy) {
  ui.send.disabled = busy;
  ui.stop.disabled = !busy;
  document.body.dataset.state = busy ? 'streaming' : 'idle';
}

async function send(text) {
  if (!ui.model.value) await loadModels();  // e.g. the API key was just entered
  const model = ui.model.value;
  if (!model) {
    ui.input.value = text;  // kept for a retry; loadModels() tells what is wrong
    return;
  }
  clearStatus();
  history.push({ role: 'user', content: text });
  const userBubble = addBubble('user', text);
  const bubble = addBubble('assistant', '');
  const textEl = bubble.querySelector('.text');
  bubble.classList.add('streaming');

  const messages = [];
  const system = ui.system.value.trim();
  if (system) messages.push({ role: 'system', content: system });
  messages.push(...history);
  const request = { model, messages, stream: true };
  const temperature = Number.parseFloat(ui.temperature.value);
  if (Number.isFinite(temperature)) request.temperature = temperature;
  const maxTokens = Number.parseInt(ui.maxTokens.value, 10);
  if (Number.isFinite(maxTokens) && maxTokens > 0) request.max_tokens = maxTokens;

  controller = new AbortController();
  setBusy(true);
  let reply = '';
  let note = '';
  let failed = false;
  try {
    const response = await fetch('/v1/chat/completions', {
      method: 'POST', headers: requestHeaders(), body: JSON.stringify(request), signal: controller.signal,
    });
    if (!response.ok) throw new Error(await describeError(response));
    let finish = null;
    let streamError = null;
    const parser = sseParser((data) => {
      if (data === '[DONE]') return;
      const chunk = JSON.parse(data);
      if (chunk.error) {
        streamError = chunk.error.message ?? String(chunk.error);
        return;
      }
      const choice = chunk.choices?.[0];
      if (!choice) return;
      const delta = choice.delta?.content;
      if (typeof delta === 'string' && delta) {
        reply += delta;
        textEl.textContent = reply;  // text, never HTML
        scrollToEnd();
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(value);
    }
    parser.end();
    if (streamError) throw new Error(`The server stopped the reply: ${streamError}`);
    if (finish === 'length') note = 'cut at the max tokens';
  } catch (e) {
    if (e.name === 'AbortError') {
      note = 'stopped';
    } else {
      failed = true;
      note = e.message;
      showStatus(e.message);
    }
  } finally {
    controller = null;
    bubble.classList.remove('streaming');
    setBusy(false);
  }
  if (reply) {
    history.push({ role: 'assistant', content: reply });
    if (note) addNote(bubble, note);
  } else if (failed) {
    // Nothing came back: the turn is taken back, so that it can be sent again.
    history.pop();
    bubble.remove();
    userBubble.classList.add('failed');
    addNote(userBubble, 'not sent');
  } else {
    addNote(bubble, note || 'empty reply');
  }
  if (failed && reply) bubble.classList.add('failed');
  scrollToEnd();
}

function newChat() {
  if (controller) controller.abort();
  history = [];
  ui.messages.replaceChildren(ui.empty);
  ui.empty.hidden = false;
  clearStatus();
  ui.input.focus();
}

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.input.value.trim();
  if (!text || controller) return;
  ui.input.value = '';
  send(text);
});
ui.input.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.form.requestSubmit();
  }
});
ui.stop.addEventListener('click', () => {
  if (controller) controller.abort();
});
ui.newChat.addEventListener('click', newChat);
ui.settingsToggle.addEventListener('click', () => openSettings(ui.settings.hidden));
ui.model.addEventListener('change', () => storageSet(MODEL_STORAGE, ui.model.value));
ui.apiKey.addEventListener('change', () => {
  storageSet(KEY_STORAGE, ui.apiKey.value.trim());
  loadModels();
});

ui.apiKey.value = storageGet(KEY_STORAGE);
setBusy(false);
loadModels();
