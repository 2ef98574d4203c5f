// Tool calling through the official openai client. The server runs the shared stories260K with
// a real tool-aware template (Qwen 2.5's, --chat-template-file): a tiny model does not choose to
// call tools, so calls are forced (tool_choice required / named), which runs the same path a real
// model's call takes: the template's tool prompt, the syntax's opener, the schema constraint, the
// parser and the OpenAI response shapes (streamed and not).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { startServer, MODEL } from './harness.mjs';

const TEMPLATE = path.join(path.dirname(path.dirname(MODEL)), 'chat-templates', 'Qwen-Qwen2.5-7B-Instruct.jinja');

const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Get the weather for a city.',
      parameters: {
        type: 'object',
        properties: {
          location: { type: 'string', maxLength: 12 },
          unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        },
        required: ['location', 'unit'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'add',
      description: 'Add two integers.',
      parameters: {
        type: 'object',
        properties: { a: { type: 'integer' }, b: { type: 'integer' } },
        required: ['a', 'b'],
        additionalProperties: false,
      },
    },
  },
];

function checkCall(call, allowed) {
  assert.equal(call.type, 'function');
  assert.match(call.id, /^call_/);
  assert.ok(allowed.includes(call.function.name), call.function.name);
  const args = JSON.parse(call.function.arguments);
  if (call.function.name === 'get_weather') {
    assert.deepEqual(Object.keys(args).sort(), ['location', 'unit']);
    assert.equal(typeof args.location, 'string');
    assert.ok([...args.location].length <= 12);
    assert.ok(['celsius', 'fahrenheit'].includes(args.unit));
  } else {
    assert.deepEqual(Object.keys(args).sort(), ['a', 'b']);
    assert.ok(Number.isInteger(args.a) && Number.isInteger(args.b));
  }
}

let server;
let client;

before(async () => {
  server = await startServer(['--chat-template-file', TEMPLATE, '--log-prompts', '-c', '2048']);
  client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

const ask = [{ role: 'user', content: 'What is the weather in Oslo?' }];

describe('tool calls', () => {
  test('the server reads the template and its tool-call syntax', () => {
    assert.match(server.log(), /chat template 'jinja' \(tool calls: hermes\)/);
  });

  for (const temperature of [0, 0.9]) {
    test(`tool_choice required gives a valid call (temperature ${temperature})`, async () => {
      const r = await client.chat.completions.create({
        model: 'stories260K-f32', messages: ask, tools, tool_choice: 'required', max_tokens: 120, temperature, seed: 7,
      });
      const c = r.choices[0];
      assert.equal(c.finish_reason, 'tool_calls', JSON.stringify(c.message));
      assert.equal(c.message.content, null);
      assert.equal(c.message.tool_calls.length, 1);
      checkCall(c.message.tool_calls[0], ['get_weather', 'add']);
    });
  }

  test('a named function is the one called', async () => {
    const r = await client.chat.completions.create({
      messages: ask, tools, tool_choice: { type: 'function', function: { name: 'add' } }, max_tokens: 120,
      temperature: 0.7, seed: 1, model: 'stories260K-f32',
    });
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    checkCall(r.choices[0].message.tool_calls[0], ['add']);
  });

  test('streamed calls arrive as tool_calls deltas that the client assembles', async () => {
    const stream = client.chat.completions.stream({
      model: 'stories260K-f32', messages: ask, tools, tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 120, temperature: 0,
    });
    const deltas = [];
    stream.on('chunk', (ch) => { if (ch.choices[0]?.delta?.tool_calls) deltas.push(ch.choices[0].delta.tool_calls); });
    const final = await stream.finalChatCompletion();
    assert.ok(deltas.length >= 1);
    assert.equal(deltas[0][0].index, 0);
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
    checkCall(final.choices[0].message.tool_calls[0], ['get_weather']);
    // The same request, not streamed, gives the same call (greedy).
    const plain = await client.chat.completions.create({
      model: 'stories260K-f32', messages: ask, tools, tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 120, temperature: 0,
    });
    assert.equal(plain.choices[0].message.tool_calls[0].function.arguments,
      final.choices[0].message.tool_calls[0].function.arguments);
  });

  test('a call and its result in the history reach the template', async () => {
    const r = await client.chat.completions.create({
      model: 'stories260K-f32', tools, max_tokens: 8, temperature: 0,
      messages: [
        ...ask,
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_9', type: 'function',
          function: { name: 'get_weather', arguments: '{"location":"Oslo","unit":"celsius"}' } }] },
        { role: 'tool', tool_call_id: 'call_9', content: '{"temperature": -3}' },
      ],
    });
    assert.ok(['stop', 'length', 'tool_calls'].includes(r.choices[0].finish_reason));
    // Qwen 2.5 renders the call with its object arguments and the result in <tool_response>.
    const log = server.log();
    assert.ok(log.includes('<tool_call>\n{"name": "get_weather", "arguments": {"location": "Oslo", "unit": "celsius"}}\n</tool_call>'), log.slice(-3000));
    assert.ok(log.includes('<tool_response>\n{"temperature": -3}\n</tool_response>'));
    assert.ok(log.includes('"name": "add"'), 'the tools are in the system prompt');
  });

  test('auto and none answer with content when the model writes no call', async () => {
    for (const tool_choice of ['auto', 'none']) {
      const r = await client.chat.completions.create({
        model: 'stories260K-f32', messages: ask, tools, tool_choice, max_tokens: 16, temperature: 0,
      });
      assert.equal(typeof r.choices[0].message.content, 'string');
      assert.equal(r.choices[0].message.tool_calls, undefined);
      assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
    }
  });

  test('bad tool requests are 400 with the param named', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'stories260K-f32', messages: ask, tool_choice: 'required' }),
      (e) => e.status === 400 && e.param === 'tool_choice');
    await assert.rejects(
      client.chat.completions.create({ model: 'stories260K-f32', messages: ask, tools,
        tool_choice: { type: 'function', function: { name: 'nope' } } }),
      (e) => e.status === 400 && /does not declare/.test(e.message));
    await assert.rejects(
      client.chat.completions.create({ model: 'stories260K-f32', messages: ask, tools, tool_choice: 'required',
        response_format: { type: 'json_object' } }),
      (e) => e.status === 400 && e.param === 'response_format');
  });
});

// The same calls through the official ollama client: its chat sends the request's fields as they
// are, so hearth's tool_choice extension forces the call, and the answer is in Ollama's shape
// (message.tool_calls[].function with the arguments as an object).
describe('tool calls through the ollama client', () => {
  const asOpenAI = (call) => ({ type: 'function', id: 'call_x',
    function: { name: call.function.name, arguments: JSON.stringify(call.function.arguments) } });

  test('a forced call, not streamed, is a valid call in Ollama\'s shape', async () => {
    const ollama = new Ollama({ host: server.base });
    const r = await ollama.chat({ model: 'stories260K-f32', messages: ask, tools, tool_choice: 'required',
      stream: false, options: { temperature: 0, num_predict: 120 } });
    assert.equal(r.done, true);
    assert.equal(r.message.role, 'assistant');
    assert.equal(r.message.tool_calls.length, 1);
    assert.equal(typeof r.message.tool_calls[0].function.arguments, 'object');
    checkCall(asOpenAI(r.message.tool_calls[0]), ['get_weather', 'add']);
  });

  test('streamed, the call arrives in a message of the stream, equal to the non-streamed one', async () => {
    const ollama = new Ollama({ host: server.base });
    const req = { model: 'stories260K-f32', messages: ask, tools,
      tool_choice: { type: 'function', function: { name: 'add' } }, options: { temperature: 0, num_predict: 120 } };
    const calls = [];
    for await (const part of await ollama.chat({ ...req, stream: true })) {
      if (part.message?.tool_calls) calls.push(...part.message.tool_calls);
    }
    assert.equal(calls.length, 1);
    checkCall(asOpenAI(calls[0]), ['add']);
    const plain = await ollama.chat({ ...req, stream: false });
    assert.deepEqual(plain.message.tool_calls[0].function, calls[0].function);
  });

  test('a call and its result in an Ollama history reach the template', async () => {
    const ollama = new Ollama({ host: server.base });
    await ollama.chat({ model: 'stories260K-f32', tools, stream: false, options: { temperature: 0, num_predict: 4 },
      messages: [
        { role: 'user', content: 'What is the weather in Bergen?' },
        { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather',
          arguments: { location: 'Bergen', unit: 'celsius' } } }] },
        { role: 'tool', content: '{"temperature": 4}', tool_name: 'get_weather' },
      ] });
    const log = server.log();
    assert.ok(log.includes('<tool_call>\n{"name": "get_weather", "arguments": {"location": "Bergen", "unit": "celsius"}}\n</tool_call>'), log.slice(-3000));
    assert.ok(log.includes('<tool_response>\n{"temperature": 4}\n</tool_response>'));
  });
});
