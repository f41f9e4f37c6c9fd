import { contractSuite } from './support/contract.ts';

contractSuite('postgres', __filename);
