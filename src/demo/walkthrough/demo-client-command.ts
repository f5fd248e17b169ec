import type { CommandContext } from '../../command/command.js';
import { demoClientConfig } from './demo-client-config.js';
import { otpSource } from './otp-source.js';
import { runStepUpWalkthrough } from './step-up-walkthrough.js';

/**
 * `authz demo-client`: replays the step-up scenario against Envoy and the dev IdP, printing each step.
 * Resolves to 0 when the transfer went through, 1 when it did not.
 *
 * @throws UsageError for flags it cannot use.
 */
export async function demoClientCommand(argv: readonly string[], context: CommandContext): Promise<number> {
  const config = demoClientConfig(argv, context.interactive());
  const ok = await runStepUpWalkthrough({
    ...config,
    secondFactor: otpSource(config.otp, config.issuer),
    print: (line) => context.io.out(line + '\n'),
  });
  return ok ? 0 : 1;
}
