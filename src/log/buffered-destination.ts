import { pino, type DestinationStream } from 'pino';
import { DECISION_EVENT } from './decision-log.js';

/**
 * The log destination of `authz serve`: decision lines, one per request, are gathered and written in
 * chunks, off the request path (pino's asynchronous destination, sonic-boom with `sync: false`, pino's
 * docs/asynchronous.md), at most `maxDelayMs` after they were logged. Every other line (start, health,
 * reloads, faults: rare, and wanted at once) is written straight away, after the decisions before it.
 *
 * Lines may be lost only if the process is killed outright (SIGKILL, power loss): {@link flush} writes
 * them on shutdown, and pino itself writes them synchronously on `process.exit()` and on an uncaught
 * exception (its `exit` handler).
 */
export interface BufferedDestination extends DestinationStream {
  write(line: string): void;
  /** Writes every line gathered so far, and resolves once they are written (never rejects). */
  flush(): Promise<void>;
  /** Writes every line gathered so far before returning: for paths with no event loop left to wait on. */
  flushSync(): void;
}

/** What {@link createBufferedDestination} may be given; each has a production default. */
export interface BufferedDestinationOptions {
  /** File descriptor written to (default 1, standard output). */
  readonly fd?: number;
  /**
   * Other processes write to the same output (`authz serve --workers N`): each write is then at most 4 KiB
   * (see ATOMIC_PIPE_WRITE_BYTES), and `bufferBytes` defaults to 3 KiB rather than 8.
   */
  readonly shared?: boolean;
  /** A write of decision lines is due once this many bytes have gathered... */
  readonly bufferBytes?: number;
  /** ...or this many milliseconds after the first of them was logged, whichever comes first. */
  readonly maxDelayMs?: number;
}

/** Defaults of {@link createBufferedDestination}, with units. */
export const BUFFERED_DESTINATION_DEFAULTS = Object.freeze({
  fd: 1, // standard output
  bufferBytes: 8192, // 8 KiB: about 20 decision lines per write
  sharedBufferBytes: 3072, // 3 KiB when the output is shared, under the 4 KiB a write may then take
  maxDelayMs: 100, // 100 ms: what someone tailing the log could notice
});

/** The most one write takes when the output is not shared (sonic-boom's own default). */
const MAX_WRITE_BYTES = 16 * 1024; // 16 KiB

/**
 * Linux's PIPE_BUF: a write of at most this many bytes to a pipe is never split or interleaved with another
 * process's write (POSIX write(2)). `authz serve --workers N` has N processes writing to one standard output,
 * often a pipe to a container runtime; sonic-boom writes whole lines in writes of at most `maxWrite` bytes,
 * so a line from one worker can never be cut by another's (a single line longer than this excepted; decision
 * lines are far shorter, the logged path being capped at 512 characters). Alone on its output, a process
 * writes up to 16 KiB at a time: fewer writes under load.
 */
const ATOMIC_PIPE_WRITE_BYTES = 4096;

/**
 * Creates the destination `authz serve` logs through (standard output by default); see
 * {@link BufferedDestination}.
 *
 * @throws RangeError when `bufferBytes` is not below the most one write takes (16 KiB, or 4 KiB when
 * `shared`), or `maxDelayMs` is not a positive number.
 */
export function createBufferedDestination(options: BufferedDestinationOptions = {}): BufferedDestination {
  const shared = options.shared ?? false;
  const fd = options.fd ?? BUFFERED_DESTINATION_DEFAULTS.fd;
  const maxDelayMs = options.maxDelayMs ?? BUFFERED_DESTINATION_DEFAULTS.maxDelayMs;
  const bufferBytes =
    options.bufferBytes ??
    (shared ? BUFFERED_DESTINATION_DEFAULTS.sharedBufferBytes : BUFFERED_DESTINATION_DEFAULTS.bufferBytes);
  const maxWrite = shared ? ATOMIC_PIPE_WRITE_BYTES : MAX_WRITE_BYTES;
  if (!(Number.isInteger(bufferBytes) && bufferBytes > 0 && bufferBytes < maxWrite)) {
    throw new RangeError(`bufferBytes must be an integer from 1 to ${maxWrite - 1}`);
  }
  if (!(maxDelayMs > 0)) throw new RangeError('maxDelayMs must be a positive number of milliseconds');
  const stream = pino.destination({ dest: fd, sync: false, minLength: bufferBytes, maxWrite });

  // One timer per batch of decision lines, not per line: armed by the first one that has to wait.
  let timer: NodeJS.Timeout | undefined;
  const writeDue = () => {
    timer = undefined;
    stream.flush();
  };
  const cancelTimer = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  // sonic-boom's flush() does nothing while a write is in flight, and what is left after that write stays
  // gathered if it is under `minLength`; 'drain' says the write has ended, so a line that must not wait is
  // sent then.
  let urgent = false;
  stream.on('drain', () => {
    if (!urgent) return;
    urgent = false;
    stream.flush();
  });

  const destination = {
    // pino sets `lastObj` (the object logged) before each write: how a decision line is told from others.
    [pino.symbols.needsMetadataGsym]: true as const,
    lastObj: {} as { event?: unknown },
    lastLevel: 0, // the other fields pino sets, declared so that the object keeps one shape
    lastMsg: '',
    lastTime: '',
    lastLogger: undefined as unknown,
    write(line: string) {
      stream.write(line);
      if (destination.lastObj.event !== DECISION_EVENT) {
        urgent = true;
        stream.flush();
      } else if (timer === undefined) {
        timer = setTimeout(writeDue, maxDelayMs);
        timer.unref(); // an idle log keeps no process alive
      }
    },
    flush: () =>
      new Promise<void>((resolve) => {
        cancelTimer();
        // The callback comes once the write in flight has finished; with nothing in flight any more, what
        // is still gathered (under `minLength`) is written synchronously.
        stream.flush(() => {
          flushRest(stream);
          resolve();
        });
      }),
    flushSync() {
      cancelTimer();
      flushRest(stream);
    },
  };
  return destination;
}

/** Writes what is still gathered; a standard output that is gone (EPIPE) has nothing left to write to. */
function flushRest(stream: ReturnType<typeof pino.destination>): void {
  try {
    stream.flushSync();
  } catch {
    // Nothing can be logged about a log that cannot be written.
  }
}
