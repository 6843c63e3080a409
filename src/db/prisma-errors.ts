// Recognising the Prisma errors that carry meaning for the domain.
import { Prisma } from '../generated/prisma/client.ts';

const hasCode = (error: unknown, code: string): boolean =>
  error instanceof Prisma.PrismaClientKnownRequestError && error.code === code;

/** A unique constraint refused the write (P2002). */
export const isUniqueViolation = (error: unknown) => hasCode(error, 'P2002');

/** The row to update or delete does not exist, or RLS hides it (P2025). */
export const isRecordNotFound = (error: unknown) => hasCode(error, 'P2025');

/** A foreign key refused the write (P2003). */
export const isForeignKeyViolation = (error: unknown) => hasCode(error, 'P2003');
