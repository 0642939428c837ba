-- AlterTable
ALTER TABLE "space" ADD COLUMN     "roster_visibility" TEXT NOT NULL DEFAULT 'owner';

