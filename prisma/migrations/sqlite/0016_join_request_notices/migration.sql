-- AlterTable
ALTER TABLE "dead_letter" ADD COLUMN "payload" TEXT;

-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_revocation_notice" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "space" TEXT NOT NULL,
    "kind" TEXT NOT NULL DEFAULT 'revocation',
    "service" TEXT,
    "credentials" TEXT,
    "payload" TEXT,
    "writers" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" DATETIME NOT NULL,
    "last_error" TEXT,
    "created_at" DATETIME NOT NULL
);
INSERT INTO "new_revocation_notice" ("attempts", "created_at", "credentials", "id", "last_error", "next_attempt_at", "service", "space", "writers") SELECT "attempts", "created_at", "credentials", "id", "last_error", "next_attempt_at", "service", "space", "writers" FROM "revocation_notice";
DROP TABLE "revocation_notice";
ALTER TABLE "new_revocation_notice" RENAME TO "revocation_notice";
CREATE INDEX "revocation_notice_next_attempt_at_idx" ON "revocation_notice"("next_attempt_at");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

