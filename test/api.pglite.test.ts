import { contractSuite } from './support/contract.ts';

contractSuite('pglite', __filename);
