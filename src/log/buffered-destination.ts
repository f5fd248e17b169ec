import { pino, type DestinationStream, type Logger } from 'pino';
import { DECISION_EVENT } from './decision-log.js';

/**
 * The log destination of `authz serve`: decision lines, one per request, are gathered and written in
 * chunks, off the request path (pino's asynchronous destination, sonic-boom with `sync: false`, pino's
 * docs/asynchronous.md), at most `maxDelayMs` after they were logged. Every other line (start, health,
 * reloads, faults: rare, and wanted at once) is written straight away, after the decisions before it.
 *
 * What waits for a slow output (a log collector that stalls, a pipe nobody reads) is bounded by
 * `maxBufferBytes`: a line that would take more is dropped, whole, and counted ({@link droppedLines}), never
 * waited for (that would block the request path) nor kept (memory would grow with the stall). Once the output
 * has caught up, one line says how many were dropped since the last such line (`log_lines_dropped`, at warn,
 * through the logger given to {@link reportDropsTo}); nothing is logged into the full buffer.
 *
 * Otherwise, lines may be lost only if the process is killed outright (SIGKILL, power loss): {@link flush}
 * writes them on shutdown, and pino itself writes them synchronously on `process.exit()` and on an uncaught
 * exception (its `exit` handler).
 */
export interface BufferedDestination extends DestinationStream {
  write(line: string): void;
  /** Lines dropped since this destination was created, because `maxBufferBytes` were already held. */
  readonly droppedLines: number;
  /**
   * Where the `log_lines_dropped` line goes (at warn level): the logger that writes through this destination,
   * which is made after it. Until this is called, drops are only counted.
   */
  reportDropsTo(logger: Pick<Logger, 'warn'>): void;
  /**
   * Writes every line gathered so far, then the `log_lines_dropped` line if any were dropped since the last
   * one, and resolves once they are written (never rejects).
   */
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
  /**
   * The most bytes held for the output (gathered, and being written); a line that would take more is dropped
   * and counted. At least two of the largest writes (32 KiB, or 8 KiB when `shared`).
   */
  readonly maxBufferBytes?: number;
}

/** Defaults of {@link createBufferedDestination}, with units. */
export const BUFFERED_DESTINATION_DEFAULTS = Object.freeze({
  fd: 1, // standard output
  bufferBytes: 8192, // 8 KiB: about 20 decision lines per write
  sharedBufferBytes: 3072, // 3 KiB when the output is shared, under the 4 KiB a write may then take
  maxDelayMs: 100, // 100 ms: what someone tailing the log could notice
  // 8 MiB: about 21,000 denied-decision lines (about 400 bytes each), an output stalled for 4 s at 5,000
  // denials per second, about what one process decides at full speed; a longer stall drops lines instead.
  // Small next to a busy process (about 150 MiB resident): a full buffer is 8.4 MiB of live heap, and
  // 100,000 denials into a pipe nobody read left 160 to 200 MiB resident, against 148 MiB with the pipe read
  // and 222 MiB (38 MiB of lines held) with no bound.
  maxBufferBytes: 8 * 1024 * 1024, // 8 MiB, per process
});

/** The `event` of the line saying how many lines were dropped (docs/operations.md, "Logs"). */
export const LOG_LINES_DROPPED_EVENT = 'log_lines_dropped';

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
 * `shared`), `maxBufferBytes` is not an integer of at least two such writes, or `maxDelayMs` is not a
 * positive number.
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
  const maxBufferBytes = options.maxBufferBytes ?? BUFFERED_DESTINATION_DEFAULTS.maxBufferBytes;
  // Two writes: one in flight and one gathering. When sonic-boom says 'drain', it holds at most
  // `bufferBytes`, so a whole write's room is free for the line that reports the drops.
  if (!(Number.isInteger(maxBufferBytes) && maxBufferBytes >= 2 * maxWrite)) {
    throw new RangeError(`maxBufferBytes must be an integer of at least ${2 * maxWrite}`);
  }
  // sonic-boom counts every byte not yet taken by the output, the write in flight included, and drops a line
  // (whole, emitting 'drop') that would take that count past `maxLength` (sonic-boom's README, and `write` in
  // its index.js). Retries of a write that met EAGAIN keep those bytes held, not more.
  const stream = pino.destination({
    dest: fd,
    sync: false,
    minLength: bufferBytes,
    maxWrite,
    maxLength: maxBufferBytes,
  });

  // Counted here, reported later: a line logged now would only meet the full buffer.
  let droppedLines = 0;
  let unreported = 0; // dropped since the last `log_lines_dropped` line
  let droppingSince = 0; // ms since the epoch: the first drop of those
  let reporter: Pick<Logger, 'warn'> | undefined;
  stream.on('drop', () => {
    droppedLines += 1;
    if (unreported++ === 0) droppingSince = Date.now();
  });
  /** Logs how many lines were dropped since it last did, if any were; says whether it logged. */
  const reportDrops = (): boolean => {
    if (unreported === 0 || reporter === undefined) return false;
    const dropped = unreported;
    const before = droppedLines;
    reporter.warn(
      { event: LOG_LINES_DROPPED_EVENT, dropped, since: new Date(droppingSince).toISOString() },
      `${dropped} log lines dropped: the output did not take them fast enough`,
    );
    // Dropped itself (no room, as flushSync() may find): counted with the others, and said the next time.
    if (droppedLines === before) unreported -= dropped;
    return true;
  };

  // A line that must not wait (or lines whose delay is up) met a write in flight: 'drain' writes them.
  let urgent = false;
  let flushing = false;

  // One timer per batch of decision lines, not per line: armed by the first one that has to wait. When it
  // fires during a write, flush() does nothing and the lines gathered meanwhile would wait for the next line
  // to arm a timer again (indefinitely, on a server gone quiet after a burst): they are due, so 'drain'
  // writes them, as it does an urgent line.
  let timer: NodeJS.Timeout | undefined;
  const writeDue = () => {
    timer = undefined;
    urgent = true;
    if (!flushing) stream.flush();
  };
  const cancelTimer = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  // sonic-boom's flush() does nothing while a write is in flight, and what is left after that write stays
  // gathered if it is under `minLength`; 'drain' says the write has ended, so a line that must not wait is
  // sent then. It also says the output has caught up (under `minLength` held): the moment to report drops.
  // While flush() waits for that same 'drain', neither starts a write: flush() writes them synchronously
  // after it, and a write started in between would still be in flight when it resolves.
  stream.on('drain', () => {
    if (flushing) return;
    reportDrops();
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
    get droppedLines() {
      return droppedLines;
    },
    reportDropsTo(logger: Pick<Logger, 'warn'>) {
      reporter = logger;
    },
    write(line: string) {
      stream.write(line);
      if (destination.lastObj.event !== DECISION_EVENT) {
        urgent = true;
        if (!flushing) stream.flush();
      } else if (timer === undefined) {
        timer = setTimeout(writeDue, maxDelayMs);
        timer.unref(); // an idle log keeps no process alive
      }
    },
    flush: () =>
      new Promise<void>((resolve) => {
        cancelTimer();
        flushing = true;
        // The callback comes once the write in flight has finished; with nothing in flight any more, what
        // is still gathered (under `minLength`) is written synchronously.
        const writeRest = () => {
          flushRest(stream);
          flushing = false;
          urgent = false;
          resolve();
        };
        // The count of lines dropped comes last; its line may take what is gathered to `minLength`, which
        // starts a write (sonic-boom's write()), so one more round waits for that.
        stream.flush(() => (reportDrops() ? stream.flush(writeRest) : writeRest()));
      }),
    flushSync() {
      cancelTimer();
      flushRest(stream);
      // Then the count, gathered (a line under `bufferBytes` starts no write) and written by itself.
      if (reportDrops()) flushRest(stream);
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
