// A git environment for test fixtures: no user or system config, fixed identity and dates, so
// the same commands give the same SHAs everywhere.
export const GIT_TEST_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'Tide Test',
  GIT_AUTHOR_EMAIL: 'test@tide.invalid',
  GIT_COMMITTER_NAME: 'Tide Test',
  GIT_COMMITTER_EMAIL: 'test@tide.invalid',
  GIT_AUTHOR_DATE: '2024-01-01T00:00:00Z',
  GIT_COMMITTER_DATE: '2024-01-01T00:00:00Z',
};
