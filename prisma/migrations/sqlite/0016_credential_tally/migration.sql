-- CreateTable
CREATE TABLE "credential_tally" (
    "space" TEXT NOT NULL,
    "day" TEXT NOT NULL,
    "issued" INTEGER NOT NULL DEFAULT 0,
    "refused" INTEGER NOT NULL DEFAULT 0,
    "summarised_at" DATETIME,

    PRIMARY KEY ("space", "day")
);

-- CreateIndex
CREATE INDEX "credential_tally_day_idx" ON "credential_tally"("day");

