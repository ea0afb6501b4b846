// The logger integration tests hand to controllers: debug level, silent unless TIDE_TEST_LOG is set.
import { Logger } from '../../controllers/runtime/logger.ts';

export function testLogger(): Logger {
  return new Logger({
    level: 'debug',
    encoding: 'console',
    write: process.env.TIDE_TEST_LOG ? undefined : () => {},
  });
}
