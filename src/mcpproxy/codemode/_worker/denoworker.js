// The `typescript` worker: Deno with no permissions inside the OS sandbox, one program, then exit.
//
// Run as `deno run --no-prompt ... denoworker.js`. With no --allow-* flag the program cannot read
// or write files, reach the network, read the environment, start processes or load native code;
// the OS sandbox around Deno is the second wall. The worker speaks JSON lines on stdin/stdout
// (see mcpproxy/codemode/worker.py): `ready`, then one `job` (the program as TypeScript), `req` /
// `res` for each call to the gateway (carrying the execution's capability), `out` for console
// output, and `done` with the program's value (what it returns) or its error.
//
// The program is compiled as a module from a data: URL (Deno strips the types); its body runs in
// an async function, so `await` works at the top and `return` gives the value.

const stdout = Deno.stdout;
const stdin = Deno.stdin;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const stringify = JSON.stringify;
const parse = JSON.parse;
const inspect = Deno.inspect;
const PROGRAM = "program.ts";

function send(frame) {
  const data = encoder.encode(stringify(frame) + "\n");
  let offset = 0;
  while (offset < data.length) offset += stdout.writeSync(data.subarray(offset));
}

let buffered = "";
const reader = stdin.readable.getReader();
async function receive() {
  while (true) {
    const cut = buffered.indexOf("\n");
    if (cut >= 0) {
      const line = buffered.slice(0, cut);
      buffered = buffered.slice(cut + 1);
      return parse(line);
    }
    const { value, done } = await reader.read();
    if (done) Deno.exit(0);
    buffered += decoder.decode(value, { stream: true });
  }
}

function format(args) {
  return args.map((a) => (typeof a === "string" ? a : inspect(a, { depth: 6, colors: false }))).join(" ");
}
const write = (stream) => (...args) => send({ t: "out", s: stream, d: format(args) + "\n" });
for (const name of ["log", "info", "debug", "trace"]) console[name] = write("stdout");
for (const name of ["error", "warn"]) console[name] = write("stderr");

let capability = null;
let nextId = 0;
const pending = new Map();
globalThis.__mcp = (op, payload) =>
  new Promise((resolve, reject) => {
    const id = ++nextId;
    pending.set(id, { resolve, reject });
    send({ t: "req", id, cap: capability, op, a: payload });
  });

async function pump() {
  while (true) {
    const frame = await receive();
    if (frame?.t === "res" && pending.has(frame.id)) {
      const waiter = pending.get(frame.id);
      pending.delete(frame.id);
      waiter.resolve(frame.r);
    }
  }
}

function lineOf(error, offset) {
  const stack = typeof error?.stack === "string" ? error.stack : "";
  for (const line of stack.split("\n")) {
    const match = line.match(/data:[^\s)]*?:(\d+):(\d+)\)?\s*$/);
    if (match) {
      const number = Number(match[1]) - offset;
      return number > 0 ? number : null;
    }
  }
  return null;
}

function jsonable(value) {
  const seen = new WeakSet();
  return parse(
    stringify(value === undefined ? null : value, (_key, v) => {
      if (typeof v === "bigint") return v.toString();
      if (typeof v === "function" || typeof v === "symbol") return undefined;
      if (v instanceof Error) return `${v.name}: ${v.message}`;
      if (v instanceof Map) return Object.fromEntries(v);
      if (v instanceof Set) return [...v];
      if (typeof v === "object" && v !== null) {
        if (seen.has(v)) return "[Circular]";
        seen.add(v);
      }
      return v;
    }) ?? "null",
  );
}

globalThis.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  send({ t: "out", s: "stderr", d: `unhandled rejection: ${format([event.reason])}\n` });
});

send({ t: "ready" });
const job = await receive();
capability = job.cap;
pump();
let result;
try {
  const source = job.source;
  const url = "data:application/typescript;base64," + encodeBase64(source);
  const module = await import(url);
  const value = await module.default(job.input ?? null);
  result = { t: "done", ok: true, value: jsonable(value) };
} catch (error) {
  const type = error?.name ?? "Error";
  const message = String(error?.message ?? error).replaceAll(/data:application\/typescript;base64,[A-Za-z0-9+/=]+/g, PROGRAM);
  result = { t: "done", ok: false, error: { type, message, line: lineOf(error, job.offset ?? 0) } };
}
send(result);
Deno.exit(0);

function encodeBase64(text) {
  const bytes = encoder.encode(text);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
